"""The whole hostile suite again, as an unprivileged user (the way a desktop rig runs the app).

The test creates a throwaway user (tests/jobs/as_user.py) and runs tests/jobs/test_hostile.py
and tests/jobs/test_hostile_escapes.py as that user, with real jobs under strict and basic.
Such a user cannot make cgroups under the app's own cgroup here, so the limits fall back:
processes to RLIMIT_NPROC inside the job's own user namespace (strict) and the process
watchdog, memory to the RSS watchdog (+ RLIMIT_AS for CPU jobs), time to the wall-clock
watchdog; the fork-bomb, memory-hog, spin and CPU cases of the suite prove each fallback,
and test_fallbacks_in_force_are_reported checks that the outcome names them.
"""

from __future__ import annotations

import os
import re
import sys

import pytest

from tests.jobs.as_user import UnprivilegedUser, missing_tools

SUITE = ["tests/jobs/test_hostile.py", "tests/jobs/test_hostile_escapes.py"]


@pytest.fixture(scope="module")
def user():
    if os.name != "posix" or os.geteuid() != 0:
        pytest.skip("needs root to create a user (run as a normal user, the suite itself is this proof)")
    if missing_tools():
        pytest.skip(f"missing tools: {', '.join(missing_tools())}")
    u = UnprivilegedUser.create()
    yield u
    u.remove()


@pytest.mark.slow
def test_the_hostile_suite_holds_as_an_unprivileged_user(user):
    who = user.run([sys.executable, "-c", "import os, sys; print(os.geteuid(), os.getegid(), sys.prefix)"], timeout_s=60)
    assert who.returncode == 0, who.stderr[-2000:]
    euid, egid, prefix = who.stdout.split()
    assert (int(euid), int(egid)) == (user.uid, user.gid) and user.uid != 0 and prefix == sys.prefix
    p = user.run([sys.executable, "-m", "pytest", *SUITE, "-q", "-p", "no:cacheprovider", "-rs",
                  f"--basetemp={user.home / 'pytest'}"], env={"QT_QPA_PLATFORM": "offscreen"}, timeout_s=600)
    tail = (p.stdout + p.stderr)[-6000:]
    assert p.returncode == 0, tail
    summary = p.stdout.strip().splitlines()[-1]
    passed = int(re.search(r"(\d+) passed", summary).group(1))
    assert passed >= 80 and not re.search(r"failed|error|skipped", summary), tail
