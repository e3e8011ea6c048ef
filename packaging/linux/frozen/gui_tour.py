"""Run inside the bundle (`kminer -c "$(cat gui_tour.py)" OUT_DIR [SETTLE_S]`): the real desktop app
(cli.gui.run_gui) with a timer that, once the main window is up, shows every page in turn, saves
a screenshot of each to OUT_DIR/<page>.png, waits for the scene editor's preview child, and prints
one JSON line: {"pages": [...], "shots": {page: [w, h, distinct colours]}, "charts": {page: QChartViews
shown}, "preview_children": [...],
"worker_modules": [...], "worker_libs": [...], "ms_to_window": ...}; then quits the app. Without a
wallet the first-run wizard comes up instead: {"wizard", "wizard_pages", "shots"...}, then it closes. Standard library, PySide6 and our
packages only: whatever it imports comes from the bundle."""

import json
import os
import re
import sys
import time
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

OUT = Path(sys.argv[1])
SETTLE_S = float(sys.argv[2]) if len(sys.argv) > 2 else 1.5
MODE = sys.argv[3] if len(sys.argv) > 3 else "look"  # first-run wizard: "look" (then close) or "create"
T0 = time.perf_counter()
app = QApplication.instance() or QApplication(["kminer"])
state = {"deadline": time.monotonic() + 120}


def _children(pid: int) -> list[str]:
    out = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            ppid = int((p / "stat").read_text().rsplit(")", 1)[1].split()[1])
            if ppid == pid:
                out.append((p / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip())
        except (OSError, ValueError, IndexError):
            pass
    return out


def _wait(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.02)


def _colours(img) -> int:
    img = img.scaled(160, 100)
    return len({img.pixel(x, y) for x in range(img.width()) for y in range(img.height())})


def _worker_code() -> dict:
    """What only workers may load: torch, pyrender, PyOpenGL (modules, and their libraries mapped)."""
    maps = Path("/proc/self/maps").read_text()
    return {"worker_modules": sorted(m for m in ("torch", "pyrender", "OpenGL") if m in sys.modules),
            "worker_libs": sorted({Path(ln.split()[-1]).name for ln in maps.splitlines()
                                   if re.search(r"libtorch|libc10|/OpenGL/|pyrender", ln)})}


def wizard_tour(wiz) -> None:
    """The first-run wizard is up (no wallet yet): its pages, a screenshot, then close it."""
    _wait(SETTLE_S)
    OUT.mkdir(parents=True, exist_ok=True)
    img = wiz.grab().toImage()
    img.save(str(OUT / "first-run.png"))
    doc = {"ms_to_window": round((time.perf_counter() - T0) * 1000), "wizard": type(wiz).__name__,
           "wizard_pages": [wiz.page(i).title() for i in wiz.pageIds()], "shots": {"first-run": [img.width(), img.height(), _colours(img)]},
           **_worker_code()}
    print(json.dumps(doc), flush=True)
    wiz.reject()


def _shot(widget, name: str) -> list[int]:
    OUT.mkdir(parents=True, exist_ok=True)
    img = widget.grab().toImage()
    img.save(str(OUT / (re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower() + ".png")))
    return [img.width(), img.height(), _colours(img)]


def _until(cond, seconds: float) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if cond():
            return True
        _wait(0.05)
    return cond()


def wizard_walk(wiz) -> None:
    """Walk the first-run wizard as a user would: create a wallet (password from argv[4]), keep
    the network and device choices, run the benchmark (child processes), Finish. Prints
    {"walked": [page titles], "bench": {device: summary}, "shots": ...}; the app then opens
    its main window and the tour goes on there."""
    from PySide6.QtWidgets import QWizard

    doc = {"walked": [], "shots": {}, "bench": {}}
    password = sys.argv[4] if len(sys.argv) > 4 else "package-test-password"
    for _ in range(12):
        page = wiz.currentPage()
        doc["walked"].append(page.title())
        if hasattr(page, "again") and hasattr(page, "password"):
            page.password.setText(password)
            page.again.setText(password)
        if type(page).__name__ == "PhrasePage":   # the recovery phrase, shown once: "I wrote it down"
            page.confirm.setChecked(True)
        if type(page).__name__ == "QuizPage":     # three of its words, asked back
            for pos, edit in page.edits.items():
                edit.setText(wiz.flow.phrase[pos - 1])
        if type(page).__name__ == "BenchPage":
            for cb in page.checks.values():
                cb.setChecked(True)
            t = time.monotonic()
            page.start_button.click()
            done = _until(lambda p=page: p.status.text().startswith("Done") or p.general_error.isVisible(), 300)
            doc["bench"] = {d: lbl.text() for d, lbl in page.results.items()}
            doc["bench_s"] = round(time.monotonic() - t, 1)
            if not done or page.general_error.isVisible():
                doc["error"] = f"benchmark: {page.general_error.text() or page.status.text()}"
        doc["shots"][page.title()] = _shot(wiz, "first-run-" + page.title())
        if doc.get("error"):
            break
        if page.isFinalPage() or wiz.nextId() == -1:
            wiz.button(QWizard.WizardButton.FinishButton).click()
            break
        before = wiz.currentId()
        wiz.next()
        if not _until(lambda b=before: wiz.currentId() != b, 180):
            err = getattr(page, "general_error", None)
            doc["error"] = f"stuck on {page.title()!r}: {err.text() if err is not None else ''}"
            break
    print(json.dumps(doc), flush=True)
    if doc.get("error"):
        wiz.reject()
        app.exit(3)   # never wait for a main window that a stuck walk will not open
    else:
        QTimer.singleShot(0, tour)


def tour() -> None:
    from PySide6.QtCharts import QChartView
    from PySide6.QtWidgets import QWizard

    from ui.main_window import MainWindow

    wins = [w for w in app.topLevelWidgets() if isinstance(w, MainWindow) and w.isVisible()]
    wizards = [w for w in app.topLevelWidgets() if isinstance(w, QWizard) and w.isVisible()]
    if wizards and not wins and state.get("wizard") is None:
        state["wizard"] = wizards[0]
        (wizard_walk if MODE == "create" else wizard_tour)(wizards[0])
        return
    if not wins:
        if time.monotonic() > state["deadline"]:
            print(json.dumps({"error": "no main window within 120 s"}), flush=True)
            app.exit(3)
            return
        QTimer.singleShot(100, tour)
        return
    win = wins[0]
    doc = {"ms_to_window": round((time.perf_counter() - T0) * 1000), "pages": win.page_names(), "shots": {}, "charts": {}}
    OUT.mkdir(parents=True, exist_ok=True)
    for name in doc["pages"]:
        win.show_page(name)
        _wait(SETTLE_S)
        img = win.grab().toImage()
        img.save(str(OUT / (re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower() + ".png")))
        doc["shots"][name] = [img.width(), img.height(), _colours(img)]
        page = win.pages.currentWidget()
        doc["charts"][name] = sum(1 for v in page.findChildren(QChartView) if v.isVisible())
        if name.lower().startswith("scene"):
            end = time.monotonic() + 60
            while time.monotonic() < end and not any("preview-server" in c for c in _children(os.getpid())):
                _wait(0.2)
            _wait(max(SETTLE_S, 3.0))  # let the first preview frame arrive and paint
            img = win.grab().toImage()
            img.save(str(OUT / "scene-editor-preview.png"))
    doc["preview_children"] = [c for c in _children(os.getpid()) if "preview-server" in c]
    doc.update(_worker_code())
    print(json.dumps(doc), flush=True)
    win.quit()


QTimer.singleShot(0, tour)
from cli.gui import run_gui

sys.exit(run_gui(["kminer"]))
