"""Run inside the bundle (`kminer -c "$(cat preview_frame.py)" SCENE.json`): the scene editor's
PreviewService with its default argv (the frozen executable re-invoked as `kminer preview-server`)
renders one view and a sample of two frames; prints one JSON line with the child's argv, the
timings (ms), the image size, object and box counts and how many sampled pixels are not black."""

import json
import sys
import time
from pathlib import Path

from app.runtime import PreviewService, default_orbit, server_argv

spec = json.loads(Path(sys.argv[1]).read_text(encoding="utf-8"))
t = time.perf_counter()
svc = PreviewService().start()
try:
    view = svc.view(spec, default_orbit(spec), width=320, height=240).result(timeout=180)
    first_ms = (time.perf_counter() - t) * 1000
    t = time.perf_counter()
    again = svc.view(spec, default_orbit(spec).moved(d_yaw=20), width=320, height=240).result(timeout=180)
    orbit_ms = (time.perf_counter() - t) * 1000
    sample = svc.sample(spec, 2, seed=3).result(timeout=180)
    im = view.images[0]
    lit = sum(1 for i in range(0, len(im.rgb) - 2, 3 * 97) if im.rgb[i:i + 3] != b"\0\0\0")
    print(json.dumps({"argv": server_argv(), "pid": svc.pid, "first_ms": round(first_ms), "orbit_ms": round(orbit_ms),
                      "render_ms": round(view.render_ms), "size": [im.width, im.height], "rgb_bytes": len(im.rgb),
                      "objects": im.objects, "moved_differs": again.images[0].rgb != im.rgb,
                      "sample_images": len(sample.images), "sample_boxes": sum(i.boxes for i in sample.images),
                      "lit_samples": lit}), flush=True)
finally:
    svc.close()
