"""The scene editor's photoreal preview: a small Cycles frame of the editor's view.

Runs in the preview server's child process (`jobs.render.preview.serve`, op "photoreal"),
never in the GUI. It renders frame `frame` of a photoreal scene from the editor's orbit
camera at a small size with few samples, denoised, and the dataset's camera effects
applied: what the dataset frame will look like, minus the noise of a full render.

`bpy` is optional: `not_installed()` says so in one line without starting Blender, and the
server answers such a request with `{"code": "not_installed"}` so the editor can say it once.

Units: orbit yaw/pitch in degrees, distance in metres, sizes in pixels.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import numpy as np

from jobs.render.spec import SceneError, SceneSpec

PREVIEW_SAMPLES = 8  # at 160x120, denoised: about 1.2 s a frame on 2 CPU cores
MAX_SAMPLES = 64
NOT_INSTALLED = ("the photoreal engine is not installed (Blender's bpy module, the optional "
                 "'photoreal' component): no photoreal preview")


def not_installed() -> str | None:
    """None when bpy imports, else the one-line reason (imports bpy once: about 1 s)."""
    try:
        import bpy  # noqa: F401, PLC0415 (optional, GPL-3.0, this child process only)
    except ImportError:
        return NOT_INSTALLED
    return None


class PhotoView:
    """One Cycles renderer per (spec, inputs, size, samples), kept while only the camera or
    the frame changes (a new spec rebuilds the Blender scene: about 0.2 s for the demo)."""

    def __init__(self) -> None:
        self._key: tuple | None = None
        self._r = None
        self._infos: list = []

    def _ensure(self, spec: SceneSpec, inputs: Mapping[str, Path] | None, width: int, height: int, samples: int):
        from jobs.render.library import background_image, build_library
        from jobs.render.photoreal import PhotorealRenderer

        key = (spec.canonical_json(), tuple(sorted((inputs or {}).items())), width, height, samples)
        if key == self._key and self._r is not None:
            return self._r, False
        self.close()
        sized = spec.model_copy(update={
            "engine": "photoreal",
            "outputs": spec.outputs.model_copy(update={"width": width, "height": height}),
            "photoreal": spec.photoreal.model_copy(update={"samples": samples, "denoise": True})})
        lib = build_library(sized, inputs)
        self._r = PhotorealRenderer(sized, lib, background_image(sized, inputs), samples=samples)
        self._infos = [g.info for g in lib]
        self._key = key
        return self._r, True

    def render(self, spec: SceneSpec, inputs: Mapping[str, Path] | None, *, width: int, height: int,
               yaw_deg: float, pitch_deg: float, distance: float, frame: int = 0,
               samples: int = PREVIEW_SAMPLES) -> tuple[np.ndarray, dict]:
        """(HxWx3 uint8 RGB, {"rebuilt", "objects", "samples", "device"}) of frame `frame` seen
        from the orbit camera, with the frame's lights, colours, sky and camera effects."""
        from jobs.render import randomize
        from jobs.render.sampling import layout_center, orbit_pose

        if not 16 <= width <= 1024 or not 16 <= height <= 1024:
            raise SceneError(f"photoreal preview size {width}x{height}: must lie within 16..1024 pixels")
        if not 1 <= samples <= MAX_SAMPLES:
            raise SceneError(f"photoreal preview samples={samples}: must lie within 1..{MAX_SAMPLES}")
        r, rebuilt = self._ensure(spec, inputs, width, height, samples)
        fs, ex = randomize.frame(r.spec, self._infos, spec.outputs.seed, frame)
        cam = spec.camera
        fs = replace(fs, yfov=math.radians((cam.fov_deg[0] + cam.fov_deg[1]) / 2),
                     camera_pose=orbit_pose(layout_center(spec), yaw_deg, pitch_deg, distance))
        ex = replace(ex, focus_distance=max(0.05, float(distance)))  # focus on the orbit's centre
        raw = r.render(fs, ex)
        color = raw.color
        if not randomize.is_default(spec):
            color = randomize.camera_effects(color, ex, exposure=False)  # Cycles applied the exposure
        return np.ascontiguousarray(color), {"rebuilt": rebuilt, "objects": len(fs.objects), "samples": samples,
                                             "device": r.info["renderer"]}

    def handle(self, spec: SceneSpec, inputs: Mapping[str, Path] | None, req: dict) -> tuple[dict, list[np.ndarray]]:
        """The preview server's "photoreal" request: (reply header, [image]); a missing bpy is
        the reply `{"error", "code": "not_installed"}`, a Cycles that cannot start a RenderError."""
        from jobs.render.dataset import RenderError
        from jobs.render.photoreal import PhotorealUnavailable

        missing = not_installed()
        if missing:
            return {"error": missing, "code": "not_installed"}, []
        cam = req.get("camera") or {}
        frame = int(req.get("frame", 0))
        try:
            img, info = self.render(spec, inputs, width=int(req.get("width", 160)), height=int(req.get("height", 120)),
                                    yaw_deg=float(cam.get("yaw", 0.0)), pitch_deg=float(cam.get("pitch", 0.0)),
                                    distance=float(cam.get("distance", 1.5)), frame=frame,
                                    samples=int(req.get("samples", PREVIEW_SAMPLES)))
        except PhotorealUnavailable as e:  # bpy imports but Cycles cannot start (or no such device)
            raise RenderError(str(e)) from None
        return {"rebuilt": info.pop("rebuilt"), "samples": info.pop("samples"), "device": info.pop("device"),
                "images": [dict(info, frame=frame)]}, [img]

    def close(self) -> None:
        if self._r is not None:
            self._r.close()
        self._r, self._key = None, None
