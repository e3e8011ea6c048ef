"""Frames of a scene in memory: the scene editor's live preview, its sample grid, and
`kminer render preview`.

Runs in a worker process (pyrender and OpenGL are imported here, never in the GUI).
`preview_frame` is exactly frame `index` of a dataset rendered with the same spec and seed.
`LiveView` keeps one renderer per (spec, inputs, size) and, while only the camera moves,
moves the camera node and renders again (no rebuild). `serve()` is the editor's preview
server: JSON-line requests on stdin, a JSON header line plus raw RGB bytes on stdout
(`app.runtime.preview` is its client and documents the protocol); its "photoreal" op renders
a small Cycles frame of the view (`photoreal_preview`, bpy imported only then).

Units: orbit yaw/pitch in degrees, distance in metres, image sizes in pixels.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sys
import time
import types
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
from PIL import Image, ImageDraw

from jobs.render.dataset import RenderError
from jobs.render.labels import frame_labels
from jobs.render.sampling import orbit_pose
from jobs.render.spec import SceneError, SceneSpec, parse_scene

log = logging.getLogger(__name__)

# one colour per category id (cycled), for box and mask overlays
PALETTE = [(230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48), (145, 30, 180),
           (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212)]


def _gl_ready() -> None:
    from jobs.render.renderer import select_gl_platform

    try:
        select_gl_platform()
    except RuntimeError as e:
        raise RenderError(str(e)) from None


def preview_frame(spec: SceneSpec, index: int = 0, *, seed: int | None = None,
                  inputs: Mapping[str, Path] | None = None) -> dict:
    """Render frame `index`: {"rgb": HxWx3 uint8, "instance": HxW uint32, "annotations": [...],
    "objects": [...]} (annotations and objects as in the dataset's metadata)."""
    from jobs.render.library import background_image, build_library

    _gl_ready()
    from jobs.render.renderer import SceneRenderer
    from jobs.render.sampling import sample_frame

    lib = build_library(spec, inputs)
    r = SceneRenderer(spec, lib, background_image(spec, inputs))
    try:
        fs = sample_frame(spec, [g.info for g in lib], spec.outputs.seed if seed is None else seed, index)
        raw = r.render(fs)
    finally:
        r.close()
    objects, anns = frame_labels(spec, fs, raw.ids, raw.silhouette_px, raw.truncation)
    return {"rgb": raw.color, "instance": raw.ids, "annotations": anns, "objects": objects}


def overlay(rgb: np.ndarray, annotations: list[dict], categories: list[str], labels: bool = True) -> Image.Image:
    """The frame with each annotation's box (and class name) drawn on it."""
    img = Image.fromarray(rgb).convert("RGB")
    d = ImageDraw.Draw(img)
    for a in annotations:
        x, y, w, h = a["bbox"]
        c = PALETTE[(a["category_id"] - 1) % len(PALETTE)]
        d.rectangle([x, y, x + w - 1, y + h - 1], outline=c, width=2)
        if labels and h > 12:
            d.text((x + 2, y + 1), categories[a["category_id"] - 1], fill=c)
    return img


def label_overlay(rgb: np.ndarray, ids: np.ndarray, annotations: list[dict], categories: list[str], *,
                  boxes: bool = True, masks: bool = True, labels: bool = True, alpha: float = 0.45) -> np.ndarray:
    """`rgb` with each annotated object's mask tinted in its class colour and/or its box drawn."""
    out = rgb
    if masks and annotations:
        top = int(max(int(ids.max()), max(a["instance_id"] for a in annotations)))
        lut = np.zeros((top + 1, 3), np.float32)
        on = np.zeros(top + 1, bool)
        for a in annotations:
            lut[a["instance_id"]] = PALETTE[(a["category_id"] - 1) % len(PALETTE)]
            on[a["instance_id"]] = True
        sel = on[ids]
        out = rgb.astype(np.float32)
        out[sel] = (1 - alpha) * out[sel] + alpha * lut[ids[sel]]
        out = out.astype(np.uint8)
    if boxes:
        return np.asarray(overlay(out, annotations, categories, labels=labels))
    return np.ascontiguousarray(out)


def legend(spec: SceneSpec) -> list[list]:
    """[[class name, [r, g, b]], ...]: the overlay colour of each class."""
    return [[c, list(PALETTE[i % len(PALETTE)])] for i, c in enumerate(spec.categories)]


# ---------------------------------------------------------------------------- fast paths
_MS_SAMPLES = [4]
_SHADOW_FLAGS = 32 | 64 | 128  # pyrender RenderFlags.SHADOWS_*: shadow maps are bound per primitive
_RGBA_FLAG = 2048


def install_fast_paths(pyrender) -> None:
    """Opt-in speed-ups for renderers marked `_kminer_fast` (the live view only; dataset
    renders are untouched): no MSAA, opaque meshes drawn near to far with the room last (the
    depth test then skips shading hidden pixels), scene lights bound once per shader program
    per frame instead of once per primitive, and no depth read-back. Same pixels as stock
    pyrender without MSAA. Process-wide and idempotent."""
    from pyrender import renderer as prr

    cls = prr.Renderer
    if getattr(cls, "_kminer_fast_paths", False):
        return
    stock_ms = prr.glRenderbufferStorageMultisample
    stock_conf, stock_sorted = cls._configure_main_framebuffer, cls._sorted_mesh_nodes
    stock_forward, stock_light, stock_read = cls._forward_pass, cls._bind_lighting, cls._read_main_framebuffer
    GL = prr  # pyrender.renderer re-exports OpenGL.GL's names

    def storage_ms(target, samples, fmt, w, h):
        return stock_ms(target, _MS_SAMPLES[0], fmt, w, h)

    def configure(self):
        _MS_SAMPLES[0] = 0 if getattr(self, "_kminer_fast", False) else 4
        return stock_conf(self)

    def sorted_nodes(self, scene):
        if not getattr(self, "_kminer_fast", False):
            return stock_sorted(self, scene)
        return near_to_far(self, scene)

    def forward(self, scene, flags, seg_node_map=None):
        self._kminer_lit = set()
        return stock_forward(self, scene, flags, seg_node_map)

    def bind_lighting(self, scene, program, node, flags):
        lit = getattr(self, "_kminer_lit", None)
        if getattr(self, "_kminer_fast", False) and lit is not None and not flags & _SHADOW_FLAGS:
            if id(program) in lit:
                return None
            lit.add(id(program))
        return stock_light(self, scene, program, node, flags)

    def read(self, scene, flags):
        if not getattr(self, "_kminer_fast", False) or flags & _RGBA_FLAG:
            return stock_read(self, scene, flags)
        w, h = self._main_fb_dims
        GL.glBindFramebuffer(GL.GL_READ_FRAMEBUFFER, self._main_fb_ms)
        GL.glBindFramebuffer(GL.GL_DRAW_FRAMEBUFFER, self._main_fb)
        GL.glBlitFramebuffer(0, 0, w, h, 0, 0, w, h, GL.GL_COLOR_BUFFER_BIT, GL.GL_NEAREST)
        GL.glBindFramebuffer(GL.GL_READ_FRAMEBUFFER, self._main_fb)
        buf = GL.glReadPixels(0, 0, w, h, GL.GL_RGB, GL.GL_UNSIGNED_BYTE)
        return np.flip(np.frombuffer(buf, np.uint8).reshape(h, w, 3), axis=0), None

    try:
        from pyrender.platforms import egl

        def delete_context(self):
            # stock pyrender also calls eglTerminate, which ends every other renderer's context
            from OpenGL.EGL import (
                EGL_NO_CONTEXT,
                EGL_NO_SURFACE,
                eglDestroyContext,
                eglMakeCurrent,
            )
            if self._egl_display is not None and self._egl_context is not None:
                eglMakeCurrent(self._egl_display, EGL_NO_SURFACE, EGL_NO_SURFACE, EGL_NO_CONTEXT)
                eglDestroyContext(self._egl_display, self._egl_context)
            self._egl_context = self._egl_display = None

        egl.EGLPlatform.delete_context = delete_context
    except ImportError:  # no EGL in this PyOpenGL: OSMesa contexts are independent anyway
        pass
    prr.glRenderbufferStorageMultisample = storage_ms
    cls._configure_main_framebuffer = configure
    cls._sorted_mesh_nodes = sorted_nodes
    cls._forward_pass = forward
    cls._bind_lighting = bind_lighting
    cls._read_main_framebuffer = read
    cls._kminer_fast_paths = True


def near_to_far(renderer, scene) -> list:
    """Visible opaque mesh nodes nearest first with the room (env-*) last, then transparent
    ones far to near: the depth test then rejects hidden fragments before they are shaded."""
    cam = scene.get_pose(scene.main_camera_node)[:3, 3]
    nodes = [n for n in scene.mesh_nodes if n.mesh.is_visible]
    solid = [n for n in nodes if not n.mesh.is_transparent]
    trans = [n for n in nodes if n.mesh.is_transparent]

    def near(n):
        d = scene.get_pose(n)[:3, 3] - cam
        return (n.name.startswith("env-"), float(d @ d))

    return sorted(solid, key=near) + sorted(trans, key=lambda n: -near(n)[1])


class _View:
    """One fast renderer at one image size, and the frame it shows."""

    def __init__(self, renderer) -> None:
        self.r = renderer
        self.frame: int | None = None
        self.fs = None
        self.dirty = True  # node visibility was changed by a labelled render: apply again


class LiveView:
    """The editor's renderers: fast ones for the live view (one per image size, at most
    `MAX_SIZES`: full size and the draft size used while dragging), rebuilt when the spec or
    its input files change (a camera change only moves the camera node), and a stock one
    (anti-aliased, dataset-identical) for samples.

    Threading: use from one thread (the GL contexts are bound to it)."""

    MAX_SIZES = 2

    def __init__(self) -> None:
        self._key: tuple | None = None  # (spec, inputs) the views were built for
        self._views: dict[tuple[int, int], _View] = {}
        self._skey: tuple | None = None
        self._rs = None
        self._infos: list = []
        self._lib_key: tuple | None = None
        self._lib: list = []
        self._bg = None

    def library(self, spec: SceneSpec, inputs: Mapping[str, Path] | None):
        """(asset library, background image) of `spec`, cached across views and samples."""
        from jobs.render.library import background_image, build_library

        key = (spec.canonical_json(), tuple(sorted((inputs or {}).items())))
        if key != self._lib_key:
            self._lib_key = None
            self._lib, self._bg = build_library(spec, inputs), background_image(spec, inputs)
            self._lib_key = key
        return self._lib, self._bg

    @staticmethod
    def _gl():
        _gl_ready()
        import pyrender

        from jobs.render.renderer import SceneRenderer

        install_fast_paths(pyrender)
        return SceneRenderer

    def _drop_views(self) -> None:
        for v in self._views.values():
            v.r.close()
        self._views.clear()

    def _ensure(self, spec: SceneSpec, inputs, width: int, height: int) -> tuple[_View, bool]:
        key = (spec.canonical_json(), tuple(sorted((inputs or {}).items())))
        if key != self._key:
            self._drop_views()
            self._key = None
        view = self._views.get((width, height))
        if view is not None:
            return view, False
        SceneRenderer = self._gl()
        if len(self._views) >= self.MAX_SIZES:
            self._views.pop(next(iter(self._views))).r.close()
        lib, bg = self.library(spec, inputs)
        sized = spec.model_copy(update={"outputs": spec.outputs.model_copy(update={"width": width, "height": height})})
        r = SceneRenderer(sized, lib, bg)
        inner = r.renderer._renderer
        inner._kminer_fast = True
        # the engine may patch this instance's draw order (far to near, as stock pyrender):
        # near to far is what the live view wants
        inner._sorted_mesh_nodes = types.MethodType(near_to_far, inner)
        self._infos = [g.info for g in lib]
        view = self._views[(width, height)] = _View(r)
        self._key = key
        return view, True

    def sampler(self, spec: SceneSpec, inputs: Mapping[str, Path] | None):
        """The stock renderer of `spec` at its output size (kept for the next samples)."""
        key = (spec.canonical_json(), tuple(sorted((inputs or {}).items())))
        if key != self._skey or self._rs is None:
            SceneRenderer = self._gl()
            if self._rs is not None:
                self._rs.close()
            self._rs, self._skey = None, None
            lib, bg = self.library(spec, inputs)
            self._rs, self._skey = SceneRenderer(spec, lib, bg), key
        return self._rs

    def render(self, spec: SceneSpec, inputs: Mapping[str, Path] | None, *, width: int, height: int,
               yaw_deg: float, pitch_deg: float, distance: float, frame: int = 0,
               boxes: bool = False, masks: bool = False) -> tuple[np.ndarray, dict]:
        """The scene's frame `frame` (objects, lights, colours) seen from the orbit camera."""
        from jobs.render.sampling import layout_center, sample_frame

        view, rebuilt = self._ensure(spec, inputs, width, height)
        r = view.r
        if frame != view.frame:
            fs = sample_frame(spec, self._infos, spec.outputs.seed, frame)
            cam = spec.camera
            view.fs = replace(fs, yfov=math.radians((cam.fov_deg[0] + cam.fov_deg[1]) / 2))
            view.frame, view.dirty = frame, True
        pose = orbit_pose(layout_center(spec), yaw_deg, pitch_deg, distance)
        fs = replace(view.fs, camera_pose=pose)
        info = {"rebuilt": rebuilt, "objects": len(fs.objects), "boxes": 0}
        if boxes or masks:
            raw = r.render(fs)
            view.dirty = True  # render() hides what its id pass found hidden
            _objects, anns = frame_labels(r.spec, fs, raw.ids, raw.silhouette_px, raw.truncation)
            info["boxes"] = len(anns)
            return label_overlay(raw.color, raw.ids, anns, spec.categories, boxes=boxes, masks=masks, labels=False), info
        if view.dirty:
            r.apply(fs)
            view.dirty = False
        else:
            r.scene.set_pose(r.cam_node, pose)
        return np.ascontiguousarray(r.render_color()), info

    def close(self) -> None:
        self._drop_views()
        if self._rs is not None:
            self._rs.close()
        self._rs = None
        self._key = self._skey = None


def sample_frames(spec: SceneSpec, n: int, seed: int, inputs: Mapping[str, Path] | None = None, *,
                  boxes: bool = True, masks: bool = True, live: LiveView | None = None) -> list[tuple[np.ndarray, dict]]:
    """`n` random frames of the dataset `spec` describes (the same pixels and labels a render
    job makes for those frame indices), each with its masks and boxes drawn.
    Returns [(rgb, {"frame", "boxes", "objects"})]; frame indices drawn from `seed`."""
    from jobs.render.library import background_image, build_library

    _gl_ready()
    from jobs.render.renderer import SceneRenderer
    from jobs.render.sampling import sample_frame

    total = spec.outputs.count
    rng = np.random.default_rng(seed)
    frames = sorted(rng.choice(total, size=n, replace=False).tolist()) if total >= n else [int(i) for i in rng.integers(0, total, n)]
    if live is not None:
        r = live.sampler(spec, inputs)
        lib = live.library(spec, inputs)[0]
    else:
        lib = build_library(spec, inputs)
        r = SceneRenderer(spec, lib, background_image(spec, inputs))
    samples = [sample_frame(spec, [g.info for g in lib], spec.outputs.seed, i) for i in frames]
    out = []
    try:
        r.reserve(samples)
        for fs in samples:
            raw = r.render(fs)
            _objects, anns = frame_labels(spec, fs, raw.ids, raw.silhouette_px, raw.truncation)
            img = label_overlay(raw.color, raw.ids, anns, spec.categories, boxes=boxes, masks=masks, labels=False)
            out.append((img, {"frame": fs.index, "boxes": len(anns), "objects": len(fs.objects)}))
    finally:
        if live is None:
            r.close()
    return out


# ---------------------------------------------------------------------------- server
SAMPLE_MAX_WIDTH = 960  # px: larger sample frames are scaled down for the trip to the GUI


def _fit(img: np.ndarray, width: int) -> np.ndarray:
    if img.shape[1] <= width:
        return img
    h = max(1, round(img.shape[0] * width / img.shape[1]))
    return np.asarray(Image.fromarray(img).resize((width, h), Image.Resampling.BILINEAR))


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return (text[0] if text else type(e).__name__)[:500]


class _Server:
    def __init__(self) -> None:
        self.live = LiveView()
        self.photo = None  # photoreal_preview.PhotoView, on the first "photoreal" request
        self.spec: SceneSpec | None = None
        self.spec_error: str | None = "no scene sent yet"
        self.inputs: dict[str, Path] = {}

    def _take_spec(self, req: dict) -> SceneSpec:
        if "spec" in req:
            self.inputs = {str(k): Path(v) for k, v in (req.get("inputs") or {}).items()}
            try:
                self.spec, self.spec_error = parse_scene(req["spec"]), None
            except SceneError as e:
                self.spec, self.spec_error = None, str(e)
        if self.spec is None:
            raise SceneError(self.spec_error or "no scene")
        return self.spec

    def handle(self, req: dict) -> tuple[dict, list[np.ndarray]]:
        op = req.get("op")
        spec = self._take_spec(req)
        if op == "view":
            w, h = int(req.get("width", 640)), int(req.get("height", 480))
            if not (16 <= w <= 4096 and 16 <= h <= 4096):
                raise SceneError(f"preview size {w}x{h}: must lie within 16..4096 pixels")
            cam = req.get("camera") or {}
            img, info = self.live.render(spec, self.inputs, width=w, height=h, yaw_deg=float(cam.get("yaw", 0.0)),
                                         pitch_deg=float(cam.get("pitch", 0.0)), distance=float(cam.get("distance", 1.5)),
                                         frame=int(req.get("frame", 0)), boxes=bool(req.get("boxes")), masks=bool(req.get("masks")))
            return {"rebuilt": info.pop("rebuilt"), "images": [dict(info, frame=int(req.get("frame", 0)))],
                    "legend": legend(spec)}, [img]
        if op == "sample":
            n = int(req.get("n", 8))
            if not 1 <= n <= 64:
                raise SceneError(f"sample: n={n} must lie within 1..64")
            got = sample_frames(spec, n, int(req.get("seed", 0)), self.inputs, boxes=bool(req.get("boxes", True)),
                                masks=bool(req.get("masks", True)), live=self.live)
            return {"images": [m for _img, m in got], "legend": legend(spec)}, [_fit(img, SAMPLE_MAX_WIDTH) for img, _m in got]
        if op == "photoreal":
            return self._photoreal(spec, req)
        raise SceneError(f"unknown preview request {op!r}")

    def _photoreal(self, spec: SceneSpec, req: dict) -> tuple[dict, list[np.ndarray]]:
        from jobs.render import photoreal_preview

        if self.photo is None:
            self.photo = photoreal_preview.PhotoView()
        return self.photo.handle(spec, self.inputs, req)

    def close(self) -> None:
        self.live.close()
        if self.photo is not None:
            self.photo.close()


def serve(inp: BinaryIO | None = None, out: BinaryIO | None = None) -> int:
    """The preview server loop: one request line in, one reply out, until EOF or {"op": "quit"}.

    Stray prints of libraries go to stderr: the reply stream is a private copy of stdout."""
    if out is None:
        out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
        os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    inp = inp or sys.stdin.buffer
    server = _Server()
    for line in inp:
        if not line.strip():
            continue
        t0 = time.perf_counter()
        rid: Any = None
        try:
            req = json.loads(line)
            rid = req.get("id")
            if req.get("op") == "quit":
                break
            head, imgs = server.handle(req)
        except (SceneError, RenderError, ValueError, TypeError, KeyError) as e:
            head, imgs = {"error": _one_line(e)}, []
        except Exception as e:  # a broken GL state or a bad mesh: report, keep serving
            log.exception("preview request failed")
            head, imgs = {"error": f"{type(e).__name__}: {_one_line(e)}"}, []
        for meta, img in zip(head.get("images", []), imgs):
            meta["width"], meta["height"] = int(img.shape[1]), int(img.shape[0])
        head.update(id=rid, ok="error" not in head, ms=round((time.perf_counter() - t0) * 1000, 2))
        out.write(json.dumps(head).encode() + b"\n")
        for img in imgs:
            out.write(np.ascontiguousarray(img, dtype=np.uint8).tobytes())
        out.flush()
    server.close()
    return 0


if __name__ == "__main__":
    sys.exit(serve())
