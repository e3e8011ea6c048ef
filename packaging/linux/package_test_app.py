"""`make package-test`, part two: the desktop app and the market from the frozen bundle.

Checks for what came after the first bundle: the market loop (`order`, `agent --once`,
`models list`), the scene editor's preview child (the executable re-invoked as
`kminer preview-server`), the OSMesa fallback, QR codes (segno) and QtCharts, the first-run
wizard and every page of the main window. Each function takes package_test.Bundle (and an X
display where it paints), returns a one-line detail, raises package_test.Skip or fails with an
exception; package_test.py wraps them as steps. The code that must run *inside* the bundle
lives in packaging/linux/frozen/*.py and goes in through `kminer -c`, so everything it
imports comes from the bundle. Standard library only.
"""

from __future__ import annotations

import json
import re
import statistics
import subprocess
import time
from pathlib import Path


class Skip(Exception):
    """The step cannot run here yet; the message says why."""


FROZEN = Path(__file__).resolve().parent / "frozen"
PASSWORD = {"KMINER_PASSWORD": "package-test-password"}
PAGES = ("Devices", "Jobs", "Earnings", "Scene editor", "Orders", "Models", "Wallet")
# Lines in the app's log or stderr that mean something did not load or broke.
_BAD_LOG = re.compile(r"Traceback|ImportError|ModuleNotFoundError|No module named|\bERROR\b|CRITICAL|"
                      r"Could not load the Qt platform plugin|qt\.qpa\.plugin")
# ...except these, which are expected: PyOpenGL's optional C speed-ups are not installed.
_BENIGN_LOG = re.compile(r"No OpenGL_accelerate module loaded")


def _code(name: str) -> str:
    return (FROZEN / name).read_text(encoding="utf-8")


def _last_json(text: str) -> dict:
    for line in reversed(text.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError(f"no JSON line in the output: {text.strip()[-300:]}")


def _log_sizes(kminer_home: Path) -> dict[str, int]:
    """Bytes in each of the app's log files now (to read only what a step adds)."""
    return {str(p): p.stat().st_size for p in (kminer_home / "logs").glob("*.log")}


def _log_problems(kminer_home: Path, stderr: str = "", since: dict[str, int] | None = None) -> list[str]:
    """Problem lines in `stderr` and in the app's logs (after the offsets in `since`)."""
    lines = stderr.splitlines()
    for log in sorted((kminer_home / "logs").glob("*.log")):
        with open(log, "rb") as f:
            f.seek((since or {}).get(str(log), 0))
            lines += f.read().decode("utf-8", errors="replace").splitlines()
    return [ln.strip()[:200] for ln in lines if _BAD_LOG.search(ln) and not _BENIGN_LOG.search(ln)]


def _scene(b) -> Path:
    scene = b.internal / "resources" / "scenes" / "table_top.json"
    if not scene.is_file():
        raise RuntimeError(f"{scene} is not in the bundle")
    return scene


def cli_market(b) -> str:
    """`order --help`, `devnet --help`, `models list`, and one market round on the embedded chain:
    a second account (the buyer) orders 4 frames, the wallet's own account mines them with
    `agent --once` (claim, render in the strict sandbox through the frozen worker, submit),
    `order watch` verifies (re-renders a sample through the frozen worker), accepts and pays.
    The GUI steps after this one then show the wallet's account with 1 NTK earned today."""
    for cmd in ("order", "devnet", "agent", "models"):
        if cmd not in b.commands():
            raise Skip(f"kminer {cmd} is not in this bundle")
    for args in (("order", "--help"), ("devnet", "--help"), ("agent", "--help")):
        b.run(*args, timeout=60)
    env = PASSWORD
    if not list((Path(b.env["KMINER_HOME"]) / "data" / "keystore").glob("*.json")):
        b.json("wallet", "create", "--network", "local", "--json", env=env, timeout=300)
    listed = b.run("models", "list", env=env, timeout=300).stdout.strip().splitlines()
    miner = next(a["address"] for a in b.json("wallet", "address", "--json", env=env, timeout=120) if a["current"])
    buyer = b.json("wallet", "create", "--network", "local", "--json", env=env, timeout=300)["address"]
    for amount, asset in (("2", "ETH"), ("10", "NTK")):
        b.run("wallet", "send", "--to", buyer, "--amount", amount, "--asset", asset, "--json", env=env, timeout=300)
    as_buyer = ("--account", buyer)
    order = b.json("order", "render", str(_scene(b)), "--count", "4", "--size", "160x120", "--sample", "2",
                   "--reward", "1", "--json", *as_buyer, env=env, timeout=300)
    b.run("devices", "set-mode", "cpu", "mining", timeout=60)
    try:
        t = time.perf_counter()
        agent = b.run("agent", "--once", env=env, timeout=600).stdout.strip()
        agent_s = time.perf_counter() - t
        t = time.perf_counter()
        b.run("order", "watch", "--until-idle", "--timeout", "400", *as_buyer, env=env, timeout=600)
        watch_s = time.perf_counter() - t
        paid = b.run("agent", "--once", env=env, timeout=600).stdout.strip()  # sees the payment, books it
    finally:
        b.run("devices", "set-mode", "cpu", "idle", timeout=60)
    if "today 1 NTK" not in paid:   # exact amounts, no float digits
        raise RuntimeError(f"the agent did not book the 1 NTK payment: {paid.splitlines()[-1][:120]}; "
                           f"log: {_last_warning(b)}")
    shown = b.run("order", "show", str(order["id"]), *as_buyer, env=env, timeout=120).stdout
    if f"accepted by {miner}" not in shown or "done" not in shown:
        raise RuntimeError(f"order {order['id']} not accepted: {' | '.join(shown.strip().splitlines()[:3])[:300]}")
    left = int(b.json("wallet", "balance", "--json", *as_buyer, env=env, timeout=120)["ntk_wei"])
    if left != 9 * 10**18:
        raise RuntimeError(f"the buyer has {left / 1e18} NTK left, not 10 - 1 reward = 9")
    verified = re.search(r"\[(exact[^\]]*|tolerant[^\]]*)\]", shown)
    if not agent:
        raise RuntimeError("agent --once printed no status line")
    tried = _buy_and_try(b, order["id"], as_buyer, listed)
    return (f"models list {len(listed)} listing(s); order {order['id']} claimed, rendered (strict sandbox), submitted "
            f"by agent --once in {agent_s:.1f} s; verified and paid by order watch in {watch_s:.1f} s "
            f"[{verified.group(1) if verified else '?'}]; the next agent pass booked 1 NTK earned today; {tried}")


def _last_warning(b) -> str:
    """The last WARNING/ERROR line of the app's log in the test's KMINER_HOME (why a job failed), else its last lines."""
    log = Path(b.env["KMINER_HOME"]) / "logs" / "kminer.log"
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError:
        return "no log"
    bad = [ln for ln in lines if " WARNING " in ln or " ERROR " in ln]
    if bad:
        return bad[-1].split(" ", 3)[-1][:400]
    miner = [ln for ln in lines if " app.miner" in ln]
    return "no warning; the miner's last lines: " + " | ".join(ln.split(" ", 4)[-1][:150] for ln in miner[-4:])


def _buy_and_try(b, order_id: int, as_buyer: tuple[str, str], listed: list[str]) -> str:
    """`order fetch` the dataset, `models buy` the cheapest listing, `models try` it (the
    sandboxed worker) on the first fetched frame."""
    if not listed:
        return "no model listed to buy"
    env = PASSWORD
    data = b.tmp / "fetched-order"
    b.run("order", "fetch", str(order_id), "--out", str(data), *as_buyer, env=env, timeout=300)
    frames = sorted((data / "images").glob("*.png"))
    if not frames:
        raise RuntimeError(f"order fetch copied no images to {data}")
    priced = [(int(m.group(2)), m.group(1)) for ln in listed if (m := re.match(r"#(\d+) .*, (\d+) NTK$", ln.strip()))]
    if not priced:
        raise RuntimeError(f"cannot read a listing id and price from: {listed[0][:100]}")
    price, listing = min(priced)
    b.run("models", "buy", listing, "--yes", env=env, timeout=300)
    out = b.tmp / "tried"
    tried = b.run("models", "try", listing, str(frames[0]), "--out", str(out), env=env, timeout=600).stdout
    if not list(out.glob("*.png")):
        raise RuntimeError(f"models try wrote no annotated image: {tried.strip()[-200:]}")
    first = next((ln for ln in tried.splitlines() if ln.startswith(frames[0].name)), "").split("->")[0].strip()
    return f"fetched {len(frames)} frames, bought listing #{listing} ({price} NTK), tried it: {first[:70]}"


def preview(b) -> str:
    """The scene editor's PreviewService, frozen: its child is `kminer preview-server`."""
    if "preview-server" not in b.commands():
        raise Skip("kminer preview-server is not in this bundle")
    p = b.run("-c", _code("preview_frame.py"), str(_scene(b)), timeout=300)
    doc = _last_json(p.stdout)
    if doc["argv"] != [str(b.exe), "preview-server"]:
        raise RuntimeError(f"preview child started as {doc['argv']}, not the frozen executable")
    if doc["size"] != [320, 240] or doc["rgb_bytes"] != 320 * 240 * 3 or doc["lit_samples"] < 50 or doc["objects"] < 1:
        raise RuntimeError(f"bad preview frame: {json.dumps(doc)[:300]}")
    if not doc["moved_differs"] or doc["sample_images"] != 2 or doc["sample_boxes"] < 1:
        raise RuntimeError(f"orbit or sample did not render: {json.dumps(doc)[:300]}")
    return (f"frozen `kminer preview-server`: first view {doc['first_ms']} ms (child start + scene build), orbit "
            f"{doc['orbit_ms']} ms, {doc['objects']} objects; sample of 2 with {doc['sample_boxes']} boxes")


def osmesa(b) -> str:
    """With EGL made unusable (no vendor library for glvnd), rendering falls back to OSMesa."""
    if "render" not in b.commands():
        raise Skip("kminer render is not in this bundle")
    out = b.tmp / "osmesa-render"
    p = b.run("render", str(_scene(b)), "--count", "1", "--out", str(out), "--json",
              env={"__EGL_VENDOR_LIBRARY_FILENAMES": str(b.tmp / "no-egl-vendor.json")}, timeout=300)
    try:
        card = json.loads(p.stdout)
    except ValueError:
        raise RuntimeError(f"render --json printed no card: {p.stdout.strip()[-200:]}") from None
    sw = card.get("software") or {}
    plat = sw.get("gl_platform")
    if plat != "osmesa":
        raise RuntimeError(f"rendered with {plat!r}, not the OSMesa fallback")
    missing = sorted(k for k in ("PyOpenGL", "pyrender", "pillow", "numpy") if sw.get(k) in (None, "missing"))
    if missing:
        raise RuntimeError(f"the render card lacks the versions of {', '.join(missing)} (package metadata not bundled)")
    renderer = next((v for k, v in sw.items() if k.endswith("renderer")), "?")
    return f"EGL hidden: 1 frame with OSMesa ({renderer}); card versions PyOpenGL {sw['PyOpenGL']}, pyrender {sw['pyrender']}"


def qr_charts(b) -> str:
    out = b.tmp / "qr-charts"
    p = b.run("-c", _code("qr_charts.py"), str(out), env={"QT_QPA_PLATFORM": "offscreen"}, timeout=120)
    doc = _last_json(p.stdout)
    if doc["qr_wrong_modules"] or doc["qr_modules"] < 21:
        raise RuntimeError(f"QR image does not match segno's matrix: {json.dumps(doc)}")
    flat = [k for k, n in doc["chart_colours"].items() if n < 8]
    if flat:
        raise RuntimeError(f"chart(s) painted nothing: {', '.join(flat)}")
    return (f"QR {doc['qr_modules']}x{doc['qr_modules']} modules, every module right; QtCharts "
            + ", ".join(f"{k} {v} colours" for k, v in doc["chart_colours"].items()))


_SHARED_STORE = """
import sys
from pathlib import Path
from jobs.artifacts import ArtifactStore
base, shared = Path(sys.argv[1]), sys.argv[2]
sha = ArtifactStore(base / "a", remote=shared).put_bytes(b"package-test artifact")
got = ArtifactStore(base / "b", remote=shared).fetch(sha)
assert got.read_bytes() == b"package-test artifact", got
print(sha)
"""


def shared_store(b) -> str:
    """The shared artifact store (jobs.artifact_store_url, fsspec): one home uploads to a
    file:// folder, another fetches from it; fsspec finds its implementations by name."""
    shared = (b.tmp / "shared-store").as_uri()
    sha = b.run("-c", _SHARED_STORE, str(b.tmp / "stores"), shared, timeout=120).stdout.strip()
    if not (b.tmp / "shared-store" / sha).is_file():
        raise RuntimeError(f"nothing uploaded to {shared}")
    return f"put through {shared}, fetched into a second store (sha256 {sha[:12]}...)"


def _tour(b, display: str, home: Path, out: Path, settle_s: float, mode: str = "look") -> tuple[dict, str]:
    """Run frozen/gui_tour.py in the bundle; the last JSON line it printed (the main window's tour,
    or the wizard's), with the wizard walk's line under "walk" in "create" mode."""
    env = dict(b.env, DISPLAY=display, KMINER_HOME=str(home))
    before = _log_sizes(home)
    p = subprocess.run([str(b.exe), "-c", _code("gui_tour.py"), str(out), str(settle_s), mode, PASSWORD["KMINER_PASSWORD"]],
                       capture_output=True, text=True, timeout=600, env=env, cwd=b.tmp, check=False)
    if p.returncode != 0:
        raise RuntimeError(f"GUI tour exited {p.returncode}: {(p.stderr.strip() or p.stdout.strip())[-300:]}")
    doc = _last_json(p.stdout)
    walks = [json.loads(ln) for ln in p.stdout.splitlines() if ln.startswith('{"walked"')]
    if walks:
        doc["walk"] = walks[0]
        if walks[0].get("error"):
            raise RuntimeError(f"first-run wizard: {walks[0]['error']}")
    if doc.get("error"):
        raise RuntimeError(doc["error"])
    if doc.get("worker_modules") or doc.get("worker_libs"):
        raise RuntimeError(f"the GUI process loaded worker code: {doc.get('worker_modules')} {doc.get('worker_libs')}")
    bad = _log_problems(home, p.stderr, before)
    if bad:
        raise RuntimeError(f"{len(bad)} problem line(s) in the GUI's log: {' | '.join(bad[:3])}")
    return doc, p.stderr


def gui_wizard(b, display: str, timings: dict) -> str:
    """A fresh KMINER_HOME: the first-run wizard paints (timed), its pages build, no errors logged."""
    home = b.tmp / "kminer-home-first-run"
    env = dict(b.env, DISPLAY=display, KMINER_HOME=str(home), KMINER_REPORT_STARTUP="exit")
    paints = []
    for _ in range(3):
        p = subprocess.run([str(b.exe)], capture_output=True, text=True, timeout=120, env=env, cwd=b.tmp, check=False)
        m = re.search(r"first paint: (\d+) ms after process start .*; (\w+)\)", p.stderr)
        if p.returncode != 0 or not m:
            raise RuntimeError(f"GUI exited {p.returncode} without a first paint: {p.stderr.strip()[-300:]}")
        if m.group(2) != "FirstRunWizard":
            raise RuntimeError(f"a fresh home painted {m.group(2)}, not the first-run wizard")
        paints.append(int(m.group(1)))
    timings["gui_first_paint_wizard"] = {"first_ms": paints[0], "median_ms": round(statistics.median(paints[1:])),
                                         "min_ms": min(paints[1:]), "runs": len(paints) - 1}
    doc, _ = _tour(b, display, home, b.tmp / "screens" / "first-run", 1.0)
    if doc.get("wizard") != "FirstRunWizard" or len(doc.get("wizard_pages", [])) < 2:
        raise RuntimeError(f"no first-run wizard with its pages: {json.dumps(doc)[:300]}")
    return f"FirstRunWizard painted {paints[0]} ms cold, {min(paints[1:])} ms warm; pages: {', '.join(doc['wizard_pages'])}"


def gui_first_run(b, display: str, screens: Path | None = None) -> str:
    """A fresh KMINER_HOME, walked as a new user would: create a wallet in the wizard (KDF, the
    embedded chain), keep the network and devices, run the GUI's benchmark (its child
    processes, frozen), Finish; then the main window opens and every page is shown."""
    home = b.tmp / "kminer-home-walked"
    t = time.perf_counter()
    doc, _ = _tour(b, display, home, screens or (b.tmp / "screens" / "walked"), 0.5, "create")
    wall = time.perf_counter() - t
    walk = doc.get("walk") or {}
    if "Benchmark your devices" not in walk.get("walked", []) or "Create your wallet" not in walk.get("walked", []):
        raise RuntimeError(f"the wizard walk did not reach the benchmark: {json.dumps(walk)[:300]}")
    if not any("GFLOP/s" in v for v in walk.get("bench", {}).values()):
        raise RuntimeError(f"the wizard's benchmark gave no figure: {walk.get('bench')}")
    missing = [p for p in PAGES if p not in doc.get("pages", [])]
    if missing:
        raise RuntimeError(f"after the wizard, pages missing from the main window: {', '.join(missing)}")
    if not list((home / "data" / "keystore").glob("*.json")):
        raise RuntimeError("the wizard wrote no keystore")
    bench = "; ".join(f"{d}: {v}" for d, v in walk["bench"].items())
    return (f"{len(walk['walked'])} wizard pages walked, wallet created, benchmark {walk.get('bench_s')} s ({bench}); "
            f"then the main window with {len(doc['pages'])} pages; {wall:.1f} s in all")


def gui_pages(b, display: str, screens: Path | None = None, earned: bool = False) -> str:
    """With a wallet: the main window, every page shown and grabbed, the preview child started;
    `earned` (the market step paid this wallet): the Earnings page shows its charts."""
    home = Path(b.env["KMINER_HOME"])
    if not list((home / "data" / "keystore").glob("*.json")):
        b.json("wallet", "create", "--network", "local", "--json", env=PASSWORD, timeout=300)
    out = screens or (b.tmp / "screens" / "main")
    t = time.perf_counter()
    doc, _ = _tour(b, display, home, out, 1.5)
    wall = time.perf_counter() - t
    missing = [p for p in PAGES if p not in doc.get("pages", [])]
    if missing:
        raise RuntimeError(f"pages missing from the main window: {', '.join(missing)} (has {doc.get('pages')})")
    blank = [p for p, (_w, _h, colours) in doc["shots"].items() if colours < 20]
    if blank:
        raise RuntimeError(f"page(s) painted blank: {', '.join(blank)}")
    if not any(c.split()[:2] == [str(b.exe), "preview-server"] for c in doc.get("preview_children", [])):
        raise RuntimeError(f"no `kminer preview-server` child after the scene editor: {doc.get('preview_children')}")
    charts = doc.get("charts", {}).get("Earnings", 0)
    if earned and not charts:
        raise RuntimeError("the Earnings page shows no chart although this wallet earned NTK")
    return (f"main window up {doc['ms_to_window']} ms after the script started; {len(doc['pages'])} pages shown "
            f"({', '.join(doc['pages'])}), {charts} chart(s) on Earnings, screenshots in {out}; preview child "
            f"running; tour {wall:.1f} s")
