"""Run inside the bundle with QT_QPA_PLATFORM=offscreen (`kminer -c "$(cat qr_charts.py)" OUT_DIR`):
a wallet-address QR code (segno, ui.qr) checked module by module against segno's matrix, and the
Earnings charts (PySide6.QtCharts, ui.charts) rendered into PNGs; prints one JSON line."""

import json
import sys
from pathlib import Path

from PySide6.QtWidgets import QApplication

app = QApplication.instance() or QApplication(["kminer"])
out = Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)

from ui.qr import QUIET_ZONE, qr_image, qr_matrix

text = "ethereum:0x610c7B3A15D1c387aDF22352F01D257aE9e910bB@27501"
m = qr_matrix(text)
img = qr_image(text, 240)
scale = img.width() // (len(m) + 2 * QUIET_ZONE)
wrong = sum(1 for y, row in enumerate(m) for x, on in enumerate(row)
            if (img.pixelColor((x + QUIET_ZONE) * scale + scale // 2, (y + QUIET_ZONE) * scale + scale // 2).lightness() < 128) != on)
img.save(str(out / "qr.png"))

from ui import charts

days = ["2026-11-16", "2026-11-17", "2026-11-18", "2026-11-19", "2026-11-20", "2026-11-21", "2026-11-22"]
made = {}
for name, chart in (
        ("stacked", charts.stacked_days_chart(days, [("gpu0", [1, 2, 0, 3, 4, 2, 5]), ("cpu", [0, 1, 1, 0, 2, 1, 1])],
                                              unit="NTK", palette=app.palette())),
        ("running", charts.running_total_chart(days, [1, 4, 5, 8, 14, 17, 23], unit="NTK", palette=app.palette())),
        ("comparison", charts.comparison_chart([("Knowledge mining", 2.4, "#2a82da"), ("Ethash (ETC)", 0.3, "#999999")],
                                               unit="$/day", palette=app.palette()))):
    view = charts.chart_view(chart)
    view.resize(480, 300)
    shot = view.grab().toImage()
    shot.save(str(out / f"chart-{name}.png"))
    small = shot.scaled(120, 75)
    made[name] = len({small.pixel(x, y) for x in range(small.width()) for y in range(small.height())})
print(json.dumps({"qr_modules": len(m), "qr_px": img.width(), "qr_wrong_modules": wrong, "chart_colours": made}), flush=True)
