"""Time from a rig's start with the main wallet locked to its first claim: the unattended rig.

    .venv/bin/python bench/bench_first_claim.py [--runs 3] [--json]

A throwaway home on the embedded chain: a wallet (`kminer wallet create`), its mining key
(`kminer wallet mining-key create --storage file`), the CPU set to mine, one small render job
posted by the wallet (`kminer market post`). Then, as after a reboot, with no password
anywhere (no KMINER_PASSWORD, no keyring opt-in, no terminal):
- agent: `kminer agent --json` is started and timed from process start to the first status
  line that lists the job as claimed (then to "submitted");
- app: the desktop app's market session (app.market_session.MarketSession over a locked
  WalletSession, no Qt) in a fresh process, timed from process start to the claim (the
  window's own start-up to first paint is measured by cli.gui with KMINER_REPORT_STARTUP).
Each waits for its job to be submitted, so the next run finds the CPU free.
Each run posts a fresh job. CPU-heavy only for the seconds a job renders: run with `nice`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PASSWORD = "bench first claim 42"


def kminer(home: Path, *args: str, password: bool = True) -> str:
    env = dict(os.environ, KMINER_HOME=str(home))
    env.pop("KMINER_PASSWORD", None)
    if password:
        env["KMINER_PASSWORD"] = PASSWORD
    r = subprocess.run([sys.executable, "-m", "cli", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                       timeout=300, stdin=subprocess.DEVNULL)
    if r.returncode != 0:
        raise SystemExit(f"kminer {' '.join(args)} failed: {r.stderr.strip()[-400:]}")
    return r.stdout


def setup(home: Path) -> None:
    kminer(home, "wallet", "create", "--json")
    kminer(home, "wallet", "mining-key", "create", "--storage", "file", "--json")
    kminer(home, "devices", "set-mode", "cpu", "mining")


def post_job(home: Path, n: int) -> int:
    scene = json.loads((ROOT / "resources" / "scenes" / "table_top.json").read_text())
    scene["outputs"].update({"width": 96, "height": 72, "count": 2})
    data = json.dumps({"id": f"bench-{n}", "kind": "render", "params": {"scene": scene},
                       "resources": {"device": "cpu", "max_wall_s": 300}}, sort_keys=True).encode()
    spec = home / f"spec-{n}.json"
    spec.write_bytes(data)
    out = json.loads(kminer(home, "market", "post", "--kind", "render", "--spec-hash", hashlib.sha256(data).hexdigest(),
                            "--spec-uri", spec.as_uri(), "--reward", "5", "--deadline-hours", "2",
                            "--review-hours", "1", "--json"))
    return out["job_ids"][0]


def time_agent(home: Path, job_id: int, timeout_s: float = 240) -> dict:
    env = dict(os.environ, KMINER_HOME=str(home))
    env.pop("KMINER_PASSWORD", None)
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "cli", "agent", "--json", "--interval", "0.5"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    claimed = submitted = None
    said = []
    try:
        for line in proc.stdout:
            now = time.monotonic() - t0
            if not line.startswith("{"):
                said.append(line.strip())
                continue
            states = {j["job_id"]: j["state"] for j in json.loads(line)["jobs"]}
            if claimed is None and job_id in states:
                claimed = now
            if states.get(job_id) in ("submitted", "paid"):
                submitted = now
                break
            if now > timeout_s:
                break
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
    if claimed is None:
        raise SystemExit(f"the agent never claimed job {job_id}; it said {said[-5:]}; stderr {proc.stderr.read()[-400:]}")
    return {"claim_s": claimed, "submitted_s": submitted, "said": said[:3]}


def time_session(home: Path, job_id: int, timeout_s: float = 240) -> dict:
    """The app's market session in a fresh process (as after a reboot): from process start to the
    claim, then on to the submission (so the next run finds the CPU free)."""
    env = dict(os.environ, KMINER_HOME=str(home))
    env.pop("KMINER_PASSWORD", None)
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, __file__, "--session-child", str(job_id)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    out = {}
    for line in proc.stdout:
        ev = json.loads(line)
        out[f"{ev['event']}_s"] = time.monotonic() - t0
        out.update({k: v for k, v in ev.items() if k != "event"})
    proc.wait(timeout_s)
    if "claim_s" not in out:
        raise SystemExit(f"the app's market session never claimed job {job_id}: {proc.stderr.read()[-600:]}")
    return out


def session_child(job_id: int, timeout_s: float = 240) -> int:
    """Run in the child: the desktop app's services without Qt, stepped as the window steps them."""
    from app.account import WalletSession
    from app.context import AppContext
    from app.devices import DeviceService
    from app.market_session import MarketSession

    ctx = AppContext.open()
    wallet = WalletSession(ctx)
    devices = DeviceService(ctx)
    session = MarketSession(ctx, wallet, devices)
    t0, said = time.monotonic(), False
    try:
        while time.monotonic() - t0 < timeout_s:
            rep = session.step()
            row = session.miner.row(job_id) if session.miner is not None else None
            if row is not None and not said:
                said = True
                print(json.dumps({"event": "claim", "locked": not wallet.service.is_unlocked(),
                                  "signer": session.market_signer.source, "readiness": rep.readiness.reason}), flush=True)
            if row is not None and row.state in ("submitted", "paid"):
                print(json.dumps({"event": "submitted"}), flush=True)
                return 0
            time.sleep(0.5)
    finally:
        session.close()
        wallet.close()
        devices.close()
    return 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--session-child", type=int, metavar="JOB", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.session_child is not None:
        return session_child(args.session_child)
    home = Path(tempfile.mkdtemp(prefix="km-first-claim-"))
    try:
        setup(home)
        agent, app = [], []
        for i in range(args.runs):
            agent.append(time_agent(home, post_job(home, 2 * i)))
            app.append(time_session(home, post_job(home, 2 * i + 1)))
    finally:
        import shutil

        shutil.rmtree(home, ignore_errors=True)
    out = {"agent_claim_s": [round(r["claim_s"], 2) for r in agent],
           "agent_submitted_s": [round(r["submitted_s"], 2) for r in agent if r["submitted_s"]],
           "app_session_claim_s": [round(r["claim_s"], 2) for r in app],
           "app_session_submitted_s": [round(r["submitted_s"], 2) for r in app if "submitted_s" in r],
           "app_signer": app[0]["signer"], "app_wallet_locked": app[0]["locked"], "agent_said": agent[0]["said"]}
    out["agent_claim_median_s"] = statistics.median(out["agent_claim_s"])
    out["app_session_claim_median_s"] = statistics.median(out["app_session_claim_s"])
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(f"kminer agent, wallet locked, mining key in a file: first claim {out['agent_claim_median_s']:.1f} s "
              f"after process start (runs {out['agent_claim_s']}); submitted at {out['agent_submitted_s']} s")
        print(f"desktop app's market session (no Qt), wallet locked ({out['app_signer']}): first claim "
              f"{out['app_session_claim_median_s']:.1f} s after process start (runs {out['app_session_claim_s']}); "
              f"submitted at {out['app_session_submitted_s']} s")
        print(f"agent said: {out['agent_said']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
