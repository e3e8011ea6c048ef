"""The Jobs view over the real SQLite queue."""

import json

from app.runtime import JobsService, open_queue
from app.resources import resource_path
from jobs.spec import parse_spec
from ui.jobs_view import COLUMNS, STATE_COL


def _spec(job_id: str):
    data = json.loads(resource_path("examples", "python_job.json").read_text())
    data["id"] = job_id
    return parse_spec(data)


def test_jobs_page_lists_the_queue_shows_reasons_and_cancels(qtbot, make_window, devices, ctx):
    q = open_queue(ctx)
    q.add(_spec("job-a"))
    q.add(_spec("job-b"))
    n = q.start_attempt("job-b", device_id="cpu", sandbox="strict", job_dir=ctx.paths.jobs_dir / "job-b" / "1")
    q.finish_attempt("job-b", n, status="failed", reason="timeout after 60 s")
    from ui.main_window import MainWindow

    w = MainWindow(ctx=ctx, devices=devices, jobs=JobsService(ctx), tray=False)
    qtbot.addWidget(w)
    try:
        assert w.page_names() == ["Devices", "Jobs"]
        view = w.jobs_view
        qtbot.waitUntil(lambda: view.table.rowCount() == 2, timeout=3000)
        states = {view.table.item(i, 0).text(): view.table.item(i, STATE_COL).text() for i in range(2)}
        assert states == {"job-a": "queued", "job-b": "failed"}
        row_b = next(i for i in range(2) if view.table.item(i, 0).text() == "job-b")
        assert "timeout after 60 s" in view.table.item(row_b, len(COLUMNS) - 1).text()
        # jobs not from the market: no buyer or reward; a failed one shows no progress
        assert [view.table.item(row_b, COLUMNS.index(c)).text() for c in ("Buyer", "Reward", "Paid", "Progress")] == \
            ["local", "–", "–", "–"]
        ran = view.table.item(row_b, COLUMNS.index("Ran")).text()  # the attempt's own duration, whole seconds
        assert ran.endswith(" s") and ran.split()[0].isdigit()
        assert view.table.item(next(i for i in range(2) if i != row_b), COLUMNS.index("Ran")).text() == "–"
        view.table.selectRow(row_b)
        assert not view.cancel_button.isEnabled()  # a failed job cannot be cancelled
        qtbot.waitUntil(lambda: "Attempt 1: failed on cpu (strict sandbox)" in view.detail.text(), timeout=3000)
        row_a = next(i for i in range(2) if view.table.item(i, 0).text() == "job-a")
        view.table.selectRow(row_a)
        assert view.cancel_button.isEnabled()
        view.cancel_button.click()
        qtbot.waitUntil(lambda: q.get("job-a").state == "cancelled", timeout=3000)
        qtbot.waitUntil(lambda: "1 cancelled" in view.summary.text(), timeout=3000)
    finally:
        w.quit()
        q.close()


def test_empty_queue_says_what_will_show_here(qtbot, make_window, devices, ctx):
    from ui.main_window import MainWindow

    w = MainWindow(ctx=ctx, devices=devices, jobs=JobsService(ctx), tray=False)
    qtbot.addWidget(w)
    try:
        w.show()
        qtbot.waitUntil(lambda: w.jobs_view.summary.text() == "empty queue", timeout=3000)
        w.show_page("Jobs")
        assert w.jobs_view.empty.isVisible() and not w.jobs_view.table.isVisible()
    finally:
        w.quit()


def test_durations_read_in_whole_units():
    from ui.jobs_view import duration_text

    assert [duration_text(x) for x in (None, 0.4, 42.6, 185, 3725)] == ["–", "0 s", "43 s", "3 min 05 s", "1 h 02 min"]
