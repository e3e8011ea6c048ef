"""Entry point of the frozen bundle: the GUI, the CLI and the job worker are one executable.

`kminer` with no command opens the GUI, `kminer worker ...` runs a job (the sandbox starts
`sys.executable worker`; it goes straight to jobs.worker, so a job never loads the app, its
settings or its log), `kminer bench --child` runs a benchmark child. A bundle has no
Python interpreter to start again, so this entry also answers the two other ways our code
re-runs "this interpreter":

- `kminer -c CODE [ARG...]` runs CODE like `python -c` (the render engine probes EGL in a
  child this way; package-test makes its tiny data set this way). Frozen bundles only.
- multiprocessing children (`multiprocessing.freeze_support()`).
"""

import sys


def _run_code(code: str, argv: list[str]) -> int:
    import traceback

    sys.argv = ["-c", *argv]
    try:
        exec(compile(code, "<string>", "exec"), {"__name__": "__main__", "__builtins__": __builtins__})
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:  # like `python -c`: the traceback on stderr, exit 1
        traceback.print_exc()
        return 1
    return 0


def run_worker(argv: list[str]) -> int:
    """`kminer worker ARGS`: the job worker alone (jobs/ and common/ only, never app/)."""
    from jobs.worker import main as worker_main

    return worker_main(argv)


def _driver_check() -> None:
    """The GPU bundle on a driver too old for its CUDA (or none): say so in one line, go on
    (jobs then run on the CPU). The CPU bundle has no kminer_build.json and skips this."""
    try:
        from gpu.driver import startup_problem

        line = startup_problem()
    except Exception:  # a check, never a reason not to start
        return
    if line:
        print(line, file=sys.stderr, flush=True)


def _photoreal_addon() -> None:
    """The optional photoreal engine (bpy) next to the bundle, if installed: on sys.path for the
    GUI, the CLI and every child (jobs/render/photoreal_addon.py)."""
    try:
        from jobs.render.photoreal_addon import activate

        activate()
    except Exception:  # an add-on, never a reason not to start
        pass


def main() -> int:
    import multiprocessing

    if getattr(sys, "frozen", False):
        _photoreal_addon()
    multiprocessing.freeze_support()
    if getattr(sys, "frozen", False) and len(sys.argv) >= 3 and sys.argv[1] == "-c":
        return _run_code(sys.argv[2], sys.argv[3:])
    if len(sys.argv) >= 2 and sys.argv[1] == "worker":
        return run_worker(sys.argv[2:])
    if getattr(sys, "frozen", False) and not {"--child", "preview-server"} & set(sys.argv[1:2] + sys.argv[2:3]):
        _driver_check()
    from cli.main import main as cli_main

    return cli_main()


if __name__ == "__main__":
    sys.exit(main())
