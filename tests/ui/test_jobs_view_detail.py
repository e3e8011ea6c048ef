"""The Jobs page's job detail over real jobs: tiny python jobs run through the real runtime
(sandboxed worker processes, the artifact store, the SQLite queue), then shown: the failure
reason up top, the worker's log, the output files with thumbnails, and the unpacked folder."""

from __future__ import annotations

import textwrap

import pytest

from app.runtime import JobsService, open_queue, runtime_config
from jobs.execute import Device, execute_attempt
from jobs.spec import parse_spec
from ui.background import Background
from ui.jobs_view import JobsView

GOOD = '''
import struct, sys, zlib

def png(w, h, rgb):
    raw = b"".join(b"\\x00" + bytes(rgb) * w for _ in range(h))
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    return (b"\\x89PNG\\r\\n\\x1a\\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))

def run(ctx):
    print("hello from the buyer", flush=True)
    print("a warning on stderr", file=sys.stderr, flush=True)
    (ctx.out_dir / "answer.txt").write_text("42")
    (ctx.out_dir / "images").mkdir()
    (ctx.out_dir / "images" / "000000.png").write_bytes(png(64, 48, (200, 40, 40)))
    (ctx.out_dir / "depth.png").write_bytes(png(8, 8, (0, 0, 0)))
    return {"answer": 42}
'''
BAD = '''
def run(ctx):
    print("about to look up the shelf", flush=True)
    raise ValueError("bad shelf id 7")
'''


@pytest.fixture
def runtime(ctx):
    ctx.settings.jobs.allow_code_jobs_basic = True  # where bubblewrap is missing the basic sandbox runs them
    q = open_queue(ctx)
    cfg = runtime_config(ctx)
    yield q, cfg
    q.close()


def run_job(q, cfg, job_id: str, code: str):
    sha = cfg.store.put_bytes(textwrap.dedent(code).encode())
    q.add(parse_spec({"id": job_id, "kind": "python", "inputs": {"module": {"sha256": sha}},
                      "resources": {"max_wall_s": 30}}))
    execute_attempt(q, cfg, job_id, Device("cpu"))
    return q.get(job_id)


@pytest.fixture
def make_view(qtbot, ctx):
    made = []

    def make(**kw):
        svc = JobsService(ctx)
        runner = Background("jobs")
        v = JobsView(jobs=svc, runner=runner, interval_s=0.2, **kw)
        qtbot.addWidget(v)
        made.append((v, runner, svc))
        return v

    yield make
    for v, runner, svc in made:
        v.timer.stop()
        runner.shutdown()
        svc.close()


def select(qtbot, view, job_id):
    qtbot.waitUntil(lambda: any(view.table.item(i, 0).text() == job_id for i in range(view.table.rowCount())),
                    timeout=5000)
    row = next(i for i in range(view.table.rowCount()) if view.table.item(i, 0).text() == job_id)
    with qtbot.waitSignal(view.detail.loaded, timeout=5000, check_params_cb=lambda j: j == job_id):
        view.table.selectRow(row)


def test_detail_shows_a_real_jobs_failure_log_outputs_and_opens_its_folder(qtbot, make_view, runtime):
    q, cfg = runtime
    good, bad = run_job(q, cfg, "tiny-ok", GOOD), run_job(q, cfg, "tiny-bad", BAD)
    assert good.state == "succeeded", good.reason
    assert bad.state == "failed" and "bad shelf id 7" in bad.reason
    opened = []
    view = make_view(open_url=opened.append)
    view.show()

    select(qtbot, view, "tiny-bad")
    d = view.detail
    assert d.failure.isVisible() and "Failed:" in d.failure.text() and "ValueError: bad shelf id 7" in d.failure.text()
    log = d.log_view.toPlainText()
    assert "about to look up the shelf" in log and "Traceback" in log and "ValueError: bad shelf id 7" in log
    assert log.startswith("── attempt 1: failed on cpu")
    assert d.files.count() == 0 and not d.open_button.isEnabled()
    assert "Attempt 1: failed on cpu" in d.text()

    select(qtbot, view, "tiny-ok")
    assert not d.failure.isVisible()
    assert "hello from the buyer" in d.log_view.toPlainText() and "a warning on stderr" in d.log_view.toPlainText()
    names = [d.files.item(i).text() for i in range(d.files.count())]
    assert [n.split("  ")[0] for n in names] == ["answer.txt", "depth.png", "images/000000.png"]
    assert names[0] == "answer.txt  (2 B)"
    assert "3 files" in d.outputs_note.text() and "2 images" in d.outputs_note.text()
    assert [lab.toolTip() for lab in d.thumb_labels] == ["images/000000.png", "depth.png"]  # render frames first
    pm = d.thumb_labels[0].pixmap()
    assert (pm.width(), pm.height()) == (150, 112)  # 64x48 scaled to fit 150 px, aspect kept
    assert d.open_button.isEnabled()
    with qtbot.waitSignal(d.folderOpened, timeout=5000) as blocker:
        d.open_button.click()
    folder = blocker.args[0]
    assert opened == [folder]
    from pathlib import Path

    assert (Path(folder) / "answer.txt").read_text() == "42" and (Path(folder) / "images" / "000000.png").is_file()
    d._open_url = lambda path: False  # a rig with no file manager: the path is shown instead
    with qtbot.waitSignal(d.folderOpened, timeout=5000):
        d.open_button.click()
    assert d.outputs_note.text() == f"No file manager opened it: the outputs are in {folder}"


def test_a_job_failing_while_the_page_watches_is_announced_once(qtbot, make_view, runtime):
    q, cfg = runtime
    run_job(q, cfg, "old-failure", BAD)
    view = make_view()
    failed, active = [], []
    view.jobFailed.connect(lambda j, r: failed.append((j, r)))
    view.activeJobs.connect(active.append)
    qtbot.waitUntil(lambda: view.table.rowCount() == 1, timeout=5000)
    run_job(q, cfg, "new-failure", BAD)
    qtbot.waitUntil(lambda: bool(failed), timeout=5000)
    qtbot.wait(500)  # more refreshes: still announced once, the old failure never
    assert failed == [("new-failure", "ValueError: bad shelf id 7")]
    assert active and active[-1] == 0


def test_log_keeps_the_tail_of_a_long_worker_log(ctx, runtime):
    q, cfg = runtime
    run_job(q, cfg, "chatty", "def run(ctx):\n    for i in range(20000):\n        print('line', i)\n")
    svc = JobsService(ctx)
    try:
        log = svc.log("chatty", max_bytes=1000)
        assert "bytes left out" in log and log.rstrip().endswith("line 19999") and len(log) < 1300
        assert svc.outputs("chatty") == [] and svc.output_images("chatty") == []
    finally:
        svc.close()


def test_a_growing_log_is_appended_and_followed(qtbot):
    from ui.job_detail import JobDetail

    runner = Background("jobs")
    try:
        d = JobDetail(jobs=None, runner=runner)
        qtbot.addWidget(d)
        d.resize(600, 300)
        d.show()
        first = "".join(f"line {i}\n" for i in range(500))
        d._show_log(first)
        bar = d.log_view.verticalScrollBar()
        bar.setValue(bar.maximum())
        doc = d.log_view.document()
        d._show_log(first + "line 500\n")
        assert d.log_view.document() is doc and d.log_view.toPlainText().endswith("line 499\nline 500\n")
        assert bar.value() == bar.maximum()  # it was at the end: it follows
        d._show_log("a new attempt\n")  # not a continuation: replaced
        assert d.log_view.toPlainText() == "a new attempt\n"
    finally:
        runner.shutdown()


ESCAPES = '''
import sys

def run(ctx):
    print("clip\\x1b]52;c;ZXZpbA==\\x07 clear\\x1b[2J\\x1b[H done \\u202egnp.exe", flush=True)
    raise ValueError("bad\\x1b]52;c;ZXZpbA==\\x07 id \\x1b[31mred\\u202e")
'''


def test_job_text_from_a_stranger_never_reaches_the_page_with_its_escapes(qtbot, make_view, runtime, ctx):
    """OSC 52 clipboard writes, screen clears and bidirectional overrides a job prints or puts in
    its failure reason are shown escaped on the Jobs page, its detail log and the tray notice."""
    q, cfg = runtime
    rec = run_job(q, cfg, "escapes", ESCAPES)
    assert rec.state == "failed"
    svc = JobsService(ctx)
    try:
        texts = [svc.log("escapes"), svc.job("escapes")["reason"], svc.jobs()[0]["reason"],
                 svc.attempts("escapes")[0]["reason"]]
    finally:
        svc.close()
    for t in texts:
        assert "\x1b" not in t and "\x07" not in t and "\u202e" not in t, t
    assert "\\x1b]52;c;ZXZpbA==\\x07" in texts[0] and "\\u202e" in texts[0]
    view = make_view()
    failed = []
    view.jobFailed.connect(lambda j, r: failed.append(r))
    view._states = {}  # it was already failed when the page opened: announce it as new
    select(qtbot, view, "escapes")
    shown = view.detail.failure.text() + view.detail.log_view.toPlainText() + "".join(failed)
    assert "\x1b" not in shown and "\u202e" not in shown and "red" in shown
