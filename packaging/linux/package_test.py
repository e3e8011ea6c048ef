"""`make package-test`: check a built bundle the way a user's machine would run it.

    python3 packaging/linux/package_test.py [--exe dist/kminer/kminer] [--report FILE] [--skip-gui]

Standard library only. Every command runs the bundle's executable with a clean environment
(no PYTHONPATH, no virtualenv, a fresh HOME and KMINER_HOME in a temp folder, the working
directory outside the source tree), so nothing can be borrowed from the checkout. Steps:

  version, --help, self-test, devices --json; in the strict bubblewrap sandbox through the
  frozen `kminer worker`: a `python` job, a render job (resources/examples/render.json, or a
  few frames of the bundled table-top scene) and the train example; the photoreal engine absent
  (one line, its job fails with it) and, with --bpy-wheel, installed as the add-on (a Cycles
  frame in the sandbox) and removed; train a tiny detector and
  infer with it; infer with each demo model in resources/models/; an embedded-chain wallet; a
  quick CPU benchmark (`bench --child`); the GUI to first paint under Xvfb (and that the GUI
  process never loads libtorch); every shared library the bundle links resolves here. From
  package_test_app.py: a market round (`order render`, `agent --once` mines it, `order watch`
  verifies and pays; `models list`), the scene editor's preview child (`kminer preview-server`),
  the OSMesa fallback with EGL hidden, QR codes and QtCharts, the first-run wizard (fresh home)
  and every page of the main window (screenshots under --screens).

A step that needs something not there yet (render engine, demo models, Xvfb) is SKIPped with
the reason; any FAIL makes the exit code 1. Start-up times are measured and reported.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
import package_test_app as A  # noqa: E402
from bundle_manifest import APP_NAME, app_version  # noqa: E402
from package_test_app import Skip  # noqa: E402

RESULTS: list[dict] = []
ONLY: set[str] = set()
"""--only: run just these steps (by name); empty: every step."""


def step(name: str):
    def deco(fn):
        def run(*a, **kw):
            if ONLY and name not in ONLY:
                return None
            t = time.perf_counter()
            try:
                detail, status = fn(*a, **kw), "PASS"
            except Skip as e:
                detail, status = str(e), "SKIP"
            except Exception as e:  # one line per failed step; the others still run
                detail, status = f"{type(e).__name__}: {e}", "FAIL"
            ms = round((time.perf_counter() - t) * 1000)
            RESULTS.append({"step": name, "status": status, "detail": detail, "ms": ms})
            print(f"{status}  {name:<14} {detail}  ({ms} ms)", flush=True)
        return run
    return deco


class Bundle:
    """The executable under test and the clean environment it runs in."""

    def __init__(self, exe: Path, tmp: Path):
        self.exe = exe
        self.tmp = tmp
        self.internal = self._internal_dir()
        home = tmp / "home"
        home.mkdir()
        self.env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8",
                    "KMINER_HOME": str(tmp / "kminer-home"), "TMPDIR": str(tmp)}
        for k in ("PYOPENGL_PLATFORM", "EGL_PLATFORM"):
            if k in os.environ:
                self.env[k] = os.environ[k]

    def _internal_dir(self) -> Path:
        base = self.exe.resolve().parent
        return base / "_internal" if (base / "_internal").is_dir() else base

    def run(self, *args: str, timeout: float = 300, env: dict | None = None, check: bool = True):
        e = dict(self.env, **(env or {}))
        p = subprocess.run([str(self.exe), *args], capture_output=True, text=True, timeout=timeout, env=e, cwd=self.tmp)
        if check and p.returncode != 0:
            tail = (p.stderr.strip() or p.stdout.strip() or "no output").splitlines()[-1]
            raise RuntimeError(f"`kminer {' '.join(args)[:80]}` exited {p.returncode}: {tail[:300]}")
        return p

    def json(self, *args: str, **kw) -> object:
        p = self.run(*args, **kw)
        return json.loads(p.stdout)

    def commands(self) -> set[str]:
        out = self.run("--help").stdout
        return set(re.findall(r"^    (\S+)\s", out, re.M))


def timed(fn, n: int) -> dict:
    """Run `fn` n times after one warm-up; wall times in ms (first = the warm-up run)."""
    first = _wall(fn)
    runs = [_wall(fn) for _ in range(n)]
    return {"first_ms": round(first), "median_ms": round(statistics.median(runs)), "min_ms": round(min(runs)), "runs": n}


def _wall(fn) -> float:
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1000


def du_mib(path: Path) -> float:
    total = sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())
    return round(total / 2**20, 1)


# ---------------------------------------------------------------- steps


@step("version")
def check_version(b: Bundle) -> str:
    out = b.run("--version").stdout.strip()
    want = f"kminer {app_version()}"
    if out != want:
        raise RuntimeError(f"{out!r} != {want!r}")
    return out


@step("self-test")
def check_selftest(b: Bundle) -> str:
    p = b.run("self-test", "--json", check=False, timeout=300)
    doc = json.loads(p.stdout)
    bad = [f"{c['check']}: {c['detail']}" for c in doc["checks"] if not c["ok"]]
    if p.returncode != 0 or bad:
        raise RuntimeError("; ".join(bad) or f"exit {p.returncode}")
    return "; ".join(f"{c['check']} {c['detail']}" for c in doc["checks"])


@step("devices")
def check_devices(b: Bundle) -> str:
    doc = b.json("devices", "--json")
    names = [d.get("name", "?") for d in doc] if isinstance(doc, list) else [str(doc)[:80]]
    return ", ".join(names)


def _job(b: Bundle, spec: Path) -> dict:
    p = b.run("job", "run", str(spec), "--sandbox", "strict", "--json", check=False, timeout=600)
    try:
        doc = json.loads(p.stdout)
    except ValueError:
        tail = (p.stderr.strip() or "no output").splitlines()[-1]
        raise RuntimeError(f"job run exited {p.returncode}: {tail[:300]}") from None
    if doc.get("status") != "succeeded":
        raise RuntimeError(f"job {doc.get('id')} {doc.get('status')}: {doc.get('reason')}")
    if doc.get("sandbox", {}).get("level") != "strict":
        raise RuntimeError(f"ran under {doc.get('sandbox')}, not strict")
    return doc


@step("python job")
def check_python_job(b: Bundle) -> str:
    spec = b.internal / "resources" / "examples" / "python_job.json"
    if not spec.is_file():
        raise RuntimeError(f"{spec} is not in the bundle")
    doc = _job(b, spec)
    return f"strict sandbox, result {json.dumps(doc.get('result'))[:80]}, run {doc.get('timing', {}).get('run_s')} s"


def _render_spec(b: Bundle, frames: int) -> Path | None:
    """resources/examples/render.json when the bundle has one, else a job of `frames` frames of
    the bundled table-top scene; None when the bundle has no render engine."""
    example = b.internal / "resources" / "examples" / "render.json"
    if example.is_file():
        return example
    scene = b.internal / "resources" / "scenes" / "table_top.json"
    if "render" not in b.commands() or not scene.is_file():
        return None
    spec = {"spec_version": 1, "id": "package-test-render", "kind": "render",
            "params": {"scene": json.loads(scene.read_text()), "count": frames}, "inputs": {},
            "resources": {"device": "any", "max_wall_s": 600, "max_ram_mb": 3000, "max_disk_mb": 256,
                          "max_processes": 64, "max_open_files": 256}, "seed": 7}
    path = b.tmp / "render_job.json"
    path.write_text(json.dumps(spec))
    return path


@step("render job")
def check_render_job(b: Bundle) -> str:
    spec = _render_spec(b, 3)
    if spec is None:
        raise Skip("no render engine in this bundle (kminer render) and no resources/examples/render.json")
    doc = _job(b, spec)
    res = doc.get("result") or {}
    counts = res.get("returned", res).get("counts") if isinstance(res, dict) else None
    return f"strict sandbox, {spec.name}: counts {json.dumps(counts)[:80]}, run {doc.get('timing', {}).get('run_s')} s"


@step("train job")
def check_train_job(b: Bundle) -> str:
    spec = b.internal / "resources" / "examples" / "train_job.json"
    if not spec.is_file():
        raise Skip("resources/examples/train_job.json is not in the bundle")
    doc = _job(b, spec)
    res = doc.get("result") or {}
    return f"strict sandbox, result {json.dumps(res)[:100]}, run {doc.get('timing', {}).get('run_s')} s"


def _photoreal_spec(b: Bundle) -> Path:
    """One 96x72 frame of the bundled table-top scene on the photoreal engine (4 samples)."""
    scene = json.loads((b.internal / "resources" / "scenes" / "table_top.json").read_text())
    scene["engine"] = "photoreal"
    scene["photoreal"] = {"samples": 4, "denoise": False}
    scene["outputs"].update({"width": 96, "height": 72, "count": 1})
    spec = {"spec_version": 1, "id": "package-test-photoreal", "kind": "render", "params": {"scene": scene, "count": 1},
            "inputs": {}, "resources": {"device": "cpu", "max_wall_s": 600, "max_ram_mb": 6000, "max_disk_mb": 512,
                                        "max_processes": 64, "max_open_files": 1024}, "seed": 7}
    path = b.tmp / "photoreal_job.json"
    path.write_text(json.dumps(spec))
    return path


@step("photoreal off")
def check_photoreal_off(b: Bundle) -> str:
    """Without the optional engine: `kminer photoreal` says so in one line (exit 3) and a
    photoreal render job fails with that line, in the strict sandbox, nothing else."""
    if (b.exe.resolve().parent / "photoreal").exists():
        raise Skip("this bundle has the photoreal add-on installed")
    p = b.run("photoreal", check=False)
    line = p.stdout.strip()
    if p.returncode != 3 or "\n" in line or not line.startswith("photoreal engine not installed: `kminer photoreal install`"):
        raise RuntimeError(f"`kminer photoreal` exited {p.returncode}: {line[:200]!r}")
    q = b.run("job", "run", str(_photoreal_spec(b)), "--sandbox", "strict", "--json", check=False, timeout=300)
    doc = json.loads(q.stdout)
    if doc.get("status") == "succeeded" or "photoreal engine not installed" not in str(doc.get("reason")):
        raise RuntimeError(f"photoreal job {doc.get('status')}: {str(doc.get('reason'))[:200]}")
    return f"one line, exit 3: {line[:70]}...; the photoreal job fails with it"


@step("photoreal add-on")
def check_photoreal_addon(b: Bundle, wheel: Path | None) -> str:
    """`kminer photoreal install --wheel FILE` (sha256-checked) beside the bundle, a Cycles
    frame in the strict sandbox through the frozen worker, then `kminer photoreal remove`."""
    if wheel is None:
        raise Skip("no bpy wheel given (--bpy-wheel)")
    folder = b.exe.resolve().parent
    if not os.access(folder, os.W_OK):
        raise Skip(f"{folder} is not writable here (a system install: sudo kminer photoreal install)")
    t = time.perf_counter()
    b.run("photoreal", "install", "--wheel", str(wheel), timeout=600)
    install_s = time.perf_counter() - t
    try:
        p = b.run("photoreal", "status", check=False)
        if p.returncode != 0:
            raise RuntimeError(f"after install: {p.stdout.strip()[:200]}")
        doc = _job(b, _photoreal_spec(b))
        res = doc.get("result") or {}
        counts = res.get("returned", res).get("counts") if isinstance(res, dict) else None
        detail = (f"installed in {install_s:.0f} s ({du_mib(folder / 'photoreal'):.0f} MiB); {p.stdout.strip()[:60]}; "
                  f"a Cycles frame in the strict sandbox: counts {json.dumps(counts)[:60]}, "
                  f"run {doc.get('timing', {}).get('run_s')} s")
    finally:
        b.run("photoreal", "remove", check=False)
    if b.run("photoreal", check=False).returncode != 3:
        raise RuntimeError("`kminer photoreal remove` left it installed")
    return detail


_MAKE_SHAPES = ("import sys; from pathlib import Path; from jobs.train.synthetic import make_shapes_dataset; "
                "make_shapes_dataset(Path(sys.argv[1]), n_images=int(sys.argv[2]))")


@step("train+infer")
def check_train_infer(b: Bundle) -> str:
    if "train" not in b.commands() or "infer" not in b.commands():
        raise Skip("kminer train/infer are not in this bundle")
    ds, model, out = b.tmp / "shapes", b.tmp / "model", b.tmp / "infer-out"
    b.run("-c", _MAKE_SHAPES, str(ds), "24", timeout=120)
    doc = b.json("train", str(ds), "--arch", "centernet-xs", "--epochs", "1", "--device", "cpu", "--threads", "2",
                 "--out", str(model), "--json", timeout=600)
    img = sorted((ds / "images").iterdir())[0]
    res = b.json("infer", str(model), str(img), "--out", str(out), "--device", "cpu", "--json", timeout=300)
    if not (model / "model_card.json").is_file():
        raise RuntimeError("no model_card.json written")
    metric = {k: v for k, v in (doc.items() if isinstance(doc, dict) else []) if isinstance(v, (int, float))}
    return f"1 epoch on 24 images ({json.dumps(metric)[:80]}); infer -> {json.dumps(res)[:80]}"


@step("demo models")
def check_demo_models(b: Bundle) -> str:
    models = b.internal / "resources" / "models"
    cards = sorted(models.glob("*/model_card.json")) if models.is_dir() else []
    if not cards:
        raise Skip("no demo model in resources/models/ yet")
    img = next(iter(sorted((b.tmp / "shapes" / "images").glob("*.png"))), None)
    if img is None:
        b.run("-c", _MAKE_SHAPES, str(b.tmp / "shapes"), "2", timeout=120)
        img = sorted((b.tmp / "shapes" / "images").glob("*.png"))[0]
    done = []
    for card in cards:
        res = b.json("infer", str(card.parent), str(img), "--device", "cpu", "--json", timeout=300)
        done.append(f"{card.parent.name}: {json.dumps(res)[:60]}")
    return "; ".join(done)


@step("wallet")
def check_wallet(b: Bundle) -> str:
    if "wallet" not in b.commands():
        raise Skip("kminer wallet is not in this bundle")
    env = {"KMINER_PASSWORD": "package-test-password"}
    made = b.json("wallet", "create", "--network", "local", "--json", env=env, timeout=300)
    bal = b.json("wallet", "balance", "--json", env=env, timeout=300)
    return f"created {json.dumps(made)[:70]}; balance {json.dumps(bal)[:70]}"


@step("bench child")
def check_bench(b: Bundle) -> str:
    doc = b.json("bench", "--device", "cpu", "--quick", "--json", timeout=600)
    r = doc[0] if isinstance(doc, list) else doc
    m, g = r.get("matmul", {}), r.get("render", {})
    if "gflops" not in m or "fps" not in g:
        raise RuntimeError(f"matmul: {m.get('error', m)}; render: {g.get('error', g)}")
    return f"matmul {m['gflops']:.1f} GFLOP/s, render {g['fps']:.1f} frames/s ({g.get('renderer')})"


class Xvfb:
    """A private Xvfb server (display number chosen by Xvfb itself), stopped on exit."""

    def __enter__(self):
        r, w = os.pipe()
        self.proc = subprocess.Popen(["Xvfb", "-displayfd", str(w), "-nolisten", "tcp", "-screen", "0", "1280x900x24"],
                                     pass_fds=(w,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(w)
        with os.fdopen(r) as f:
            num = f.readline().strip()
        if not num:
            self.proc.kill()
            raise RuntimeError("Xvfb did not start")
        self.display = f":{num}"
        return self

    def __exit__(self, *exc):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


_PAINT = re.compile(r"first paint: (\d+) ms after process start")


def gui_first_paint(b: Bundle, display: str) -> int:
    env = dict(b.env, DISPLAY=display, KMINER_REPORT_STARTUP="exit")
    p = subprocess.run([str(b.exe)], capture_output=True, text=True, timeout=120, env=env, cwd=b.tmp)
    m = _PAINT.search(p.stderr)
    if p.returncode != 0 or not m:
        raise RuntimeError(f"GUI exited {p.returncode} without a first paint: {p.stderr.strip()[-300:]}")
    return int(m.group(1))


def gui_loads(b: Bundle, display: str) -> list[str]:
    """Libraries of torch and pyrender's GL stack mapped by the GUI process after its first paint."""
    env = dict(b.env, DISPLAY=display, KMINER_REPORT_STARTUP="1")
    p = subprocess.Popen([str(b.exe)], stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env,
                         cwd=b.tmp, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        for line in p.stderr:
            if _PAINT.search(line) or time.monotonic() > deadline:
                break
        time.sleep(1.0)  # let anything started after the paint (timers, services) load too
        maps = Path(f"/proc/{p.pid}/maps").read_text()
    finally:
        os.killpg(p.pid, signal.SIGKILL)
        p.wait()
    return sorted({Path(line.split()[-1]).name for line in maps.splitlines()
                   if re.search(r"libtorch|libc10|libgomp|/OpenGL/|pyrender", line)})


@step("gui")
def check_gui(b: Bundle, timings: dict) -> str:
    if not shutil.which("Xvfb"):
        raise Skip("Xvfb not installed (apt install xvfb)")
    with Xvfb() as x:
        loaded = gui_loads(b, x.display)
        if loaded:
            raise RuntimeError(f"the GUI process loaded worker libraries: {', '.join(loaded)}")
        paints = [gui_first_paint(b, x.display) for _ in range(4)]
    timings["gui_first_paint"] = {"first_ms": paints[0], "median_ms": round(statistics.median(paints[1:])),
                                  "min_ms": min(paints[1:]), "runs": len(paints) - 1}
    return f"first paint {paints[0]} ms cold, median {statistics.median(paints[1:]):.0f} ms warm; no libtorch mapped"


check_market = step("market")(A.cli_market)
check_preview = step("preview")(A.preview)
check_osmesa = step("osmesa")(A.osmesa)
check_qr_charts = step("qr+charts")(A.qr_charts)
check_shared_store = step("shared store")(A.shared_store)


@step("gui wizard")
def check_gui_wizard(b: Bundle, timings: dict) -> str:
    if not shutil.which("Xvfb"):
        raise Skip("Xvfb not installed (apt install xvfb)")
    with Xvfb() as x:
        return A.gui_wizard(b, x.display, timings)


@step("gui first run")
def check_gui_first_run(b: Bundle, screens: Path) -> str:
    if not shutil.which("Xvfb"):
        raise Skip("Xvfb not installed (apt install xvfb)")
    with Xvfb() as x:
        return A.gui_first_run(b, x.display, screens)


@step("gui pages")
def check_gui_pages(b: Bundle, screens: Path) -> str:
    if not shutil.which("Xvfb"):
        raise Skip("Xvfb not installed (apt install xvfb)")
    earned = any(r["step"] == "market" and r["status"] == "PASS" for r in RESULTS)
    with Xvfb() as x:
        return A.gui_pages(b, x.display, screens, earned)


# Debian packages every system has (Essential/required): no need to list them in Depends.
_BASE_PACKAGES = {"libc6", "libgcc-s1", "libstdc++6", "zlib1g", "libzstd1", "liblzma5", "libbz2-1.0", "libcrypt1",
                  "libselinux1", "libpcre2-8-0", "libtinfo6", "libuuid1", "libblkid1", "libmount1", "libsystemd0",
                  "libcap2", "libgcrypt20", "libgpg-error0", "liblz4-1", "libudev1", "libacl1", "libattr1"}
# Qt pieces whose libraries must resolve for the GUI (xcb) and headless (offscreen) paths.
_CORE_QT = re.compile(r"(libQt6(Core|Gui|Widgets|DBus|XcbQpa|Svg)\.so|libqxcb\.so|libqoffscreen\.so|libqsvg|"
                      r"libpyside6|libshiboken6|QtCore\.abi3|QtGui\.abi3|QtWidgets\.abi3|libpython3)")


def _dep_closure(names: list[str]) -> set[str]:
    """`names` and every installed package they depend on, transitively (alternatives all count)."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        n = todo.pop()
        if n in seen:
            continue
        seen.add(n)
        q = subprocess.run(["dpkg-query", "-W", "-f=${Depends},${Pre-Depends}", n], capture_output=True, text=True)
        for alt in re.split(r"[,|]", q.stdout if q.returncode == 0 else ""):
            dep = alt.strip().split(" ")[0].split(":")[0]
            if dep:
                todo.append(dep)
    return seen


@step("libraries")
def check_libraries(b: Bundle, depends: list[str]) -> str:
    if not shutil.which("ldd") or not shutil.which("dpkg"):
        raise Skip("needs ldd and dpkg")
    elfs = [p for p in b.internal.rglob("*") if p.is_file() and not p.is_symlink() and (".so" in p.name)]
    elfs.append(b.exe)
    lib_dirs = sorted({str(p.parent) for p in elfs})
    env = {"PATH": "/usr/bin:/bin", "LD_LIBRARY_PATH": ":".join(lib_dirs)}
    missing_core, missing_other, system = [], set(), {}
    for f in elfs:
        p = subprocess.run(["ldd", str(f)], capture_output=True, text=True, env=env)
        core = f == b.exe or bool(_CORE_QT.search(f.name))
        for line in p.stdout.splitlines():
            if "not found" in line:
                lib = line.split("=>")[0].strip()
                (missing_core.append(f"{f.name}: {lib}") if core else missing_other.add(lib))
            m = re.search(r"=> (/\S+)", line)
            if m and not m.group(1).startswith(str(b.internal)) and core:
                system[os.path.realpath(m.group(1))] = None
    owners = set()
    for lib in system:
        q = subprocess.run(["dpkg", "-S", lib], capture_output=True, text=True)
        if q.returncode != 0:  # dpkg knows the /usr/lib path when /lib is a merged-usr link, and vice versa
            alt = lib[4:] if lib.startswith("/usr/") else "/usr" + lib
            q = subprocess.run(["dpkg", "-S", alt], capture_output=True, text=True)
        if q.returncode == 0:
            owners.add(q.stdout.split(":")[0].strip())
    undeclared = sorted(owners - _dep_closure(depends) - _BASE_PACKAGES)
    if missing_core or undeclared:
        raise RuntimeError("; ".join(missing_core[:5] + ([f"packages not in Depends: {', '.join(undeclared)}"]
                                                         if undeclared else [])))
    note = f" ({len(missing_other)} libraries of optional plugins unresolved)" if missing_other else ""
    return f"{len(elfs)} ELF files; core libraries come from {', '.join(sorted(owners))}{note}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--exe", type=Path, default=ROOT / "dist" / APP_NAME / APP_NAME)
    ap.add_argument("--report", type=Path, default=ROOT / "dist" / "package-test.json")
    ap.add_argument("--skip-gui", action="store_true", help="no GUI step (no X server)")
    ap.add_argument("--quick", action="store_true", help="only version, self-test and the python job")
    ap.add_argument("--bpy-wheel", type=Path, help="the bpy wheel for the photoreal add-on step "
                    "(installed into the bundle folder, which must be writable, then removed)")
    ap.add_argument("--screens", type=Path, default=ROOT / "dist" / "package-test-screens",
                    help="where the GUI steps save their screenshots")
    ap.add_argument("--only", default="", metavar="STEP,...", help="run only these steps (e.g. 'market,gui')")
    args = ap.parse_args(argv)
    ONLY.update(x.strip() for x in args.only.split(",") if x.strip())
    if not args.exe.is_file():
        print(f"package-test: no bundle at {args.exe} (run: make package)", file=sys.stderr)
        return 1
    from make_dist import runtime_deps

    timings: dict = {}
    with tempfile.TemporaryDirectory(prefix="kminer-package-test-") as d:
        b = Bundle(args.exe.absolute(), Path(d))
        print(f"package-test: {args.exe} (clean environment in {d})", flush=True)
        check_version(b)
        timings["help"] = timed(lambda: b.run("--help"), 5)
        timings["devices_json"] = timed(lambda: b.run("devices", "--json"), 5)
        check_selftest(b)
        check_devices(b)
        check_python_job(b)
        if not args.quick:
            check_render_job(b)
            check_photoreal_off(b)
            check_photoreal_addon(b, args.bpy_wheel)
            check_train_job(b)
            check_train_infer(b)
            check_demo_models(b)
            check_wallet(b)
            check_market(b)
            check_preview(b)
            check_osmesa(b)
            check_qr_charts(b)
            check_shared_store(b)
            check_bench(b)
            if not args.skip_gui:
                check_gui(b, timings)
                check_gui_wizard(b, timings)
                check_gui_pages(b, args.screens)
                check_gui_first_run(b, args.screens / "first-run")
            check_libraries(b, runtime_deps())
    sizes = {"bundle_mib": du_mib(b.exe.resolve().parent)}
    dist = args.exe.resolve().parent.parent
    for f in sorted(dist.glob("*.tar.gz")) + sorted(dist.glob("*.deb")):
        sizes[f.name] = round(f.stat().st_size / 2**20, 1)
    print("package-test: sizes (MiB): " + ", ".join(f"{k} {v}" for k, v in sizes.items()))
    for k, v in timings.items():
        print(f"package-test: {k}: first {v['first_ms']} ms, median {v['median_ms']} ms, min {v['min_ms']} ms "
              f"({v['runs']} runs)")
    failed = [r for r in RESULTS if r["status"] == "FAIL"]
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(json.dumps({"exe": str(args.exe), "steps": RESULTS, "timings": timings, "sizes": sizes},
                                      indent=2) + "\n", encoding="utf-8")
    print(f"package-test: {len(RESULTS) - len(failed)} of {len(RESULTS)} steps passed or skipped; "
          f"{len(failed)} failed; report {args.report}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
