"""`python -m app`: the command line (`python -m cli`), kept only while the job sandbox still
starts workers as `python -m app worker` (jobs/sandbox.py); to be removed once they start as
`python -m jobs.worker`. runpy, not an import: app/ sits below cli/ in the layers."""

import runpy

runpy.run_module("cli", run_name="__main__", alter_sys=True)
