"""The photoreal render engine: Blender's Cycles path tracer through the optional `bpy` wheel.

Same scene spec, same frame samples (`sampling.sample_frame`) and the same label format as
the fast engine (`renderer.SceneRenderer`): the RGB comes from Cycles, instance ids from its
object-index pass and depth from its Z pass (both written by the first sample, never
blended, at the pixel centre: the pixel filter is a box of one pixel), silhouettes and
truncation from the objects' own triangles (a coverage raster per object, no occlusion).

`bpy` (Blender as a Python module, GPL-3.0) is an optional extra: `pip install
knowledge-miner[photoreal]`. It is imported only here and only in worker processes (the
GUI never imports this module). Device: `device="auto"` takes OptiX, CUDA, HIP or oneAPI
when Cycles finds such a GPU, else the CPU. Determinism: a fixed Cycles seed per frame,
fixed thread count and no auto tiling give bit-identical frames on one device (tests).

Axes: the spec is y-up (OpenGL); Blender is z-up, so every world matrix is pre-multiplied
by a +90 degree turn about x. Cameras and lights look along their local -z in both.
"""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from jobs.render import art, geometry
from jobs.render.coverage import project_object, silhouette_pixels
from jobs.render.exr import read_exr
from jobs.render.geometry import Part, environment_parts
from jobs.render.library import AssetGeometry
from jobs.render.sampling import FrameSample, intrinsics
from jobs.render.spec import SceneSpec, ShelfLayout

_Y_UP_TO_Z_UP = np.array([[1.0, 0, 0, 0], [0, 0, -1.0, 0], [0, 1.0, 0, 0], [0, 0, 0, 1.0]])
GPU_BACKENDS = ("OPTIX", "CUDA", "HIP", "ONEAPI")
DEFAULT_THREADS = 2  # fixed: the thread count is part of a deterministic CPU setup


class PhotorealUnavailable(RuntimeError):
    """bpy is not installed (the `photoreal` extra) or Cycles cannot start."""


def bpy_version() -> str | None:
    """The installed bpy wheel's version, or None (without importing it: that takes ~1 s)."""
    import importlib.metadata as md

    try:
        return md.version("bpy")
    except md.PackageNotFoundError:
        return None


def _import_bpy():
    try:
        import bpy  # noqa: PLC0415 (optional, GPL-3.0, worker processes only)
    except ImportError as e:
        from jobs.render.photoreal_addon import not_installed_line

        raise PhotorealUnavailable(f"{not_installed_line()} ({e})") from None
    return bpy


def select_device(bpy, want: str = "auto") -> tuple[str, str]:
    """(Cycles device "GPU"/"CPU", backend name) for `want` ("auto", "cpu" or a backend)."""
    if want.lower() == "cpu":
        return "CPU", "CPU"
    prefs = bpy.context.preferences.addons["cycles"].preferences
    order = GPU_BACKENDS if want.lower() == "auto" else (want.upper(),)
    for backend in order:
        try:
            prefs.compute_device_type = backend
            prefs.refresh_devices()
        except (TypeError, ValueError, RuntimeError):
            continue
        gpus = [d for d in prefs.devices if d.type == backend]
        if gpus:
            for d in prefs.devices:
                d.use = d.type == backend
            return "GPU", backend
    if want.lower() != "auto":
        raise PhotorealUnavailable(f"no {want} device found by Cycles")
    prefs.compute_device_type = "NONE"
    return "CPU", "CPU"


@dataclass
class PhotoFrame:
    """A rendered frame in the shape `dataset.encode_frame` reads (like renderer.RawFrame)."""

    color: np.ndarray  # (H, W, 3) uint8, display-referred sRGB
    depth: np.ndarray  # (H, W) float32 metres along the view axis, 0 = nothing
    ids: np.ndarray  # (H, W) uint32 instance id, 0 = none
    silhouette_px: np.ndarray
    truncation: np.ndarray
    K: np.ndarray


def _distractor_parts(shape: int) -> list[Part]:
    return geometry.distractor_parts(shape)


class PhotorealRenderer:
    """Renders `FrameSample`s of one scene spec with Cycles; one per worker process.

    `samples` (default: the spec's photoreal.samples) and `denoise` may be overridden by
    tests and the benchmark. `info` names the device and versions (the dataset card's
    software stack: the verifier compares it).
    """

    def __init__(self, spec: SceneSpec, library: list[AssetGeometry], background: np.ndarray | None = None, *,
                 device: str | None = None, samples: int | None = None, threads: int | None = None):
        bpy = _import_bpy()
        self.bpy = bpy
        self.spec, self.lib = spec, library
        pr = spec.photoreal
        self.samples = int(samples if samples is not None else pr.samples)
        self.width, self.height = spec.outputs.width, spec.outputs.height
        bpy.ops.wm.read_factory_settings(use_empty=True)
        sc = self.scene = bpy.context.scene
        sc.render.engine = "CYCLES"
        want = device or os.environ.get("KMINER_CYCLES_DEVICE", "auto")
        dev, backend = select_device(bpy, want)
        sc.cycles.device = dev
        self.threads = int(threads or DEFAULT_THREADS)
        r = sc.render
        r.resolution_x, r.resolution_y, r.resolution_percentage = self.width, self.height, 100
        r.pixel_aspect_x = r.pixel_aspect_y = 1.0
        r.threads_mode, r.threads = "FIXED", self.threads
        r.film_transparent = False
        r.use_persistent_data = False  # True keeps stale objects between frames: not reproducible
        c = sc.cycles
        c.samples = self.samples
        c.use_adaptive_sampling = False
        c.use_animated_seed = False
        c.use_auto_tile = False
        c.pixel_filter_type = "BOX"
        c.filter_width = 1.0
        c.max_bounces = 6
        c.use_denoising = bool(pr.denoise)
        if pr.denoise:
            c.denoiser = "OPENIMAGEDENOISE"
            c.denoising_use_gpu = dev == "GPU"
        sc.view_settings.view_transform = "Standard"
        sc.view_settings.look = "None"
        sc.display_settings.display_device = "sRGB"
        vl = sc.view_layers[0]
        vl.use_pass_z = True
        vl.use_pass_object_index = True
        self.info = {"renderer": f"Cycles {backend}", "version": f"blender {bpy.app.version_string}",
                     "vendor": "Blender Foundation", "platform": "cycles", "samples": self.samples,
                     "denoise": bool(pr.denoise), "threads": self.threads if dev == "CPU" else None}
        self._tmp = tempfile.TemporaryDirectory(prefix="kminer-cycles-")
        self._meshes: dict = {}
        self._frame_objs: list = []
        self._frame_lights: list = []
        self._build_world()
        self._build_environment(background)
        self._build_library()
        cam_data = bpy.data.cameras.new("camera")
        cam_data.sensor_fit = "VERTICAL"
        cam_data.sensor_height = 24.0
        cam_data.clip_start, cam_data.clip_end = spec.camera.znear, spec.camera.zfar
        self.cam = bpy.data.objects.new("camera", cam_data)
        sc.collection.objects.link(self.cam)
        sc.camera = self.cam

    # ------------------------------------------------------------- materials
    def _principled(self, name: str, texture: np.ndarray | None = None, tint: bool = True,
                    color=(0.8, 0.8, 0.8), rough: float = 0.6, metal: float = 0.0, per_object: bool = True):
        """A Principled BSDF; with `per_object`, colour, roughness, metalness and specular come
        from the object's custom properties (one material serves every object of an asset)."""
        bpy = self.bpy
        m = bpy.data.materials.new(name)
        m.use_nodes = True
        nt = m.node_tree
        bsdf = nt.nodes["Principled BSDF"]
        bsdf.inputs["Base Color"].default_value = (*color, 1.0)
        bsdf.inputs["Roughness"].default_value = rough
        bsdf.inputs["Metallic"].default_value = metal
        base = None
        if texture is not None:
            img = self._image(f"{name}-tex", texture)
            tex = nt.nodes.new("ShaderNodeTexImage")
            tex.image = img
            tex.interpolation = "Linear"
            base = tex.outputs["Color"]
        if per_object:
            def attr(prop):
                a = nt.nodes.new("ShaderNodeAttribute")
                a.attribute_type = "OBJECT"
                a.attribute_name = prop
                return a

            if tint:
                col = attr("km_color").outputs["Color"]
                if base is not None:
                    mix = nt.nodes.new("ShaderNodeMix")
                    mix.data_type = "RGBA"
                    mix.blend_type = "MULTIPLY"
                    mix.inputs["Factor"].default_value = 1.0
                    nt.links.new(base, mix.inputs[6])
                    nt.links.new(col, mix.inputs[7])
                    base = mix.outputs[2]
                else:
                    base = col
            nt.links.new(attr("km_rough").outputs["Fac"], bsdf.inputs["Roughness"])
            nt.links.new(attr("km_metal").outputs["Fac"], bsdf.inputs["Metallic"])
            nt.links.new(attr("km_spec").outputs["Fac"], bsdf.inputs["Specular IOR Level"])
        if base is not None:
            nt.links.new(base, bsdf.inputs["Base Color"])
        return m

    def _image(self, name: str, rgb: np.ndarray):
        bpy = self.bpy
        h, w = rgb.shape[:2]
        img = bpy.data.images.new(name, w, h, alpha=False)
        rgba = np.concatenate([rgb.astype(np.float32) / 255.0, np.ones((h, w, 1), np.float32)], axis=2)
        img.pixels.foreach_set(np.ascontiguousarray(rgba[::-1]).ravel())  # Blender rows go bottom-up
        img.pack()
        return img

    def _mesh(self, name: str, parts: list[Part], materials: list) -> object:
        """One Blender mesh from geometry parts (y-up); material slot k for part k."""
        bpy = self.bpy
        pos = np.concatenate([p.positions for p in parts]).astype(np.float64)
        nor = np.concatenate([p.normals for p in parts]).astype(np.float64)
        uvs = np.concatenate([p.uvs if p.uvs is not None else np.zeros((len(p.positions), 2), np.float32) for p in parts])
        idx, mat_idx, off = [], [], 0
        for k, p in enumerate(parts):
            idx.append(p.indices.astype(np.int64) + off)
            mat_idx.append(np.full(len(p.indices), k, np.int32))
            off += len(p.positions)
        faces = np.concatenate(idx)
        me = bpy.data.meshes.new(name)
        me.vertices.add(len(pos))
        me.vertices.foreach_set("co", pos.ravel())
        me.loops.add(faces.size)
        me.loops.foreach_set("vertex_index", faces.ravel().astype(np.int32))
        me.polygons.add(len(faces))
        me.polygons.foreach_set("loop_start", np.arange(0, faces.size, 3, dtype=np.int32))
        me.polygons.foreach_set("material_index", np.concatenate(mat_idx))
        uv = me.uv_layers.new(name="UVMap")
        uv.data.foreach_set("uv", uvs[faces.ravel()].astype(np.float32).ravel())
        me.update(calc_edges=True)
        me.normals_split_custom_set_from_vertices(nor.reshape(-1, 3).tolist())
        for m in materials:
            me.materials.append(m)
        return me

    def _matrix(self, m: np.ndarray):
        """A y-up world matrix as a Blender (z-up) mathutils.Matrix."""
        import mathutils

        return mathutils.Matrix([[float(x) for x in row] for row in _Y_UP_TO_Z_UP @ m])

    def _link(self, name: str, mesh, matrix: np.ndarray, pass_index: int = 0, props: dict | None = None):
        ob = self.bpy.data.objects.new(name, mesh)
        ob.matrix_basis = self._matrix(matrix)
        ob.pass_index = pass_index
        for k, v in (props or {}).items():
            ob[k] = v
        self.scene.collection.objects.link(ob)
        return ob

    # ------------------------------------------------------------- scene
    def _build_world(self) -> None:
        bpy = self.bpy
        w = bpy.data.worlds.new("world")
        self.scene.world = w
        w.use_nodes = True
        nt = w.node_tree
        bg = nt.nodes["Background"]
        self.world_bg = bg
        self.sky = None
        if self.spec.photoreal.sky:
            sky = nt.nodes.new("ShaderNodeTexSky")
            sky.sky_type = "HOSEK_WILKIE"
            nt.links.new(sky.outputs["Color"], bg.inputs["Color"])
            self.sky = sky

    def _build_environment(self, background: np.ndarray | None) -> None:
        self.env_mat = self._principled("env", per_object=False)
        self.wall_mat = self._principled("wall", texture=background, per_object=False, rough=0.9)
        floor = self._principled("floor", color=(0.55, 0.53, 0.5), rough=0.8, per_object=False)
        tags = None
        if isinstance(self.spec.layout, ShelfLayout) and self.spec.layout.price_tags:
            strip = art.price_strip(self.spec.name, self.spec.layout.width)
            pad = np.full((strip.shape[0], strip.shape[1] // 3, 3), 70, np.uint8)
            tags = self._principled("tags", texture=np.concatenate([strip, pad], axis=1), per_object=False, rough=0.5)
        mats = {"env": self.env_mat, "tags": tags, "floor": floor, "wall": self.wall_mat}
        for k, (role, parts) in enumerate(environment_parts(self.spec)):
            me = self._mesh(f"env-{k}", parts, [mats[role]] * len(parts))
            self._link(f"env-{k}", me, np.eye(4))

    def _build_library(self) -> None:
        """One mesh per (asset, label variant) and per distractor shape, made once."""
        self._dmeshes = []
        dmat = self._principled("distractor", tint=True)
        for s in range(3):
            parts = _distractor_parts(s)
            self._dmeshes.append(self._mesh(f"dis-{s}", parts, [dmat] * len(parts)))
        for a, g in enumerate(self.lib):
            variants = max(1, len(g.labels))
            for v in range(variants):
                if g.trimesh is not None:
                    tm = g.trimesh
                    part = Part("body", np.asarray(tm.vertices, np.float32), np.asarray(tm.vertex_normals, np.float32), None,
                                np.asarray(tm.faces, np.uint32))
                    self._meshes[(a, v)] = self._mesh(f"obj-{a}-{v}", [part], [self._principled(f"m-{a}-{v}-body")])
                    continue
                tex = g.labels[v] if g.labels else None
                has_body = any(p.role == "body" for p in g.parts)
                mats = []
                for p in g.parts:
                    if p.role == "label":
                        mats.append(self._principled(f"m-{a}-{v}-label", texture=tex, tint=not has_body))
                    elif p.role == "metal":
                        mats.append(self._principled(f"m-{a}-{v}-metal", color=(0.78, 0.78, 0.8), rough=0.3, metal=0.9, per_object=False))
                    elif p.role == "cap":
                        mats.append(self._principled(f"m-{a}-{v}-cap", color=tuple(g.cap_color), rough=0.4, per_object=False))
                    else:
                        mats.append(self._principled(f"m-{a}-{v}-body"))
                self._meshes[(a, v)] = self._mesh(f"obj-{a}-{v}", g.parts, mats)

    def apply(self, fs: FrameSample, extra) -> None:
        """Pose and paint the scene for frame `fs`; `extra` is its `randomize.PhotoExtras`."""
        bpy = self.bpy
        for ob in self._frame_objs + self._frame_lights:
            data = ob.data if ob.type == "LIGHT" else None
            bpy.data.objects.remove(ob, do_unlink=True)
            if data is not None:
                bpy.data.lights.remove(data)
        self._frame_objs, self._frame_lights = [], []
        sc = self.scene
        sc.cycles.seed = int(extra.cycles_seed)
        sc.view_settings.exposure = float(extra.exposure_ev)
        env = self.env_mat.node_tree.nodes["Principled BSDF"]
        env.inputs["Base Color"].default_value = fs.env_color
        env.inputs["Roughness"].default_value = fs.env_roughness
        wall = self.wall_mat.node_tree.nodes["Principled BSDF"]
        if not self.wall_mat.node_tree.nodes.get("Image Texture"):
            wall.inputs["Base Color"].default_value = (*fs.bg_color, 1.0)
        # world: sky (or a grey) scaled to the spec's ambient level
        self.world_bg.inputs["Strength"].default_value = float(fs.ambient) * extra.sky_strength
        if self.sky is not None:
            self.sky.sun_direction = extra.sun_direction
            self.sky.turbidity = extra.turbidity
        else:
            self.world_bg.inputs["Color"].default_value = (1.0, 1.0, 1.0, 1.0)
        cam = self.cam
        cam.data.lens = 12.0 / math.tan(fs.yfov / 2.0)
        cam.matrix_basis = self._matrix(fs.camera_pose)
        cam.data.dof.use_dof = extra.fstop is not None
        if extra.fstop is not None:
            cam.data.dof.aperture_fstop = extra.fstop
            cam.data.dof.focus_distance = extra.focus_distance
        for k, o in enumerate(fs.objects):
            jit = extra.objects[k]
            color = [min(1.0, max(0.0, c * j)) for c, j in zip(o.color[:3], jit.color_gain)]
            self._frame_objs.append(self._link(
                f"o{k:05d}", self._meshes[(o.asset, o.variant)], o.pose @ np.diag([*o.scale, 1.0]), o.instance_id,
                {"km_color": [*color, 1.0], "km_rough": min(1.0, max(0.0, o.roughness + jit.roughness)),
                 "km_metal": o.metalness, "km_spec": jit.specular}))
        for j, d in enumerate(fs.distractors):
            self._frame_objs.append(self._link(
                f"d{j:05d}", self._dmeshes[d.shape], d.pose @ np.diag([*d.scale, 1.0]), 0,
                {"km_color": list(d.color), "km_rough": 0.5, "km_metal": 0.0, "km_spec": 0.5}))
        for k, li in enumerate(fs.lights):
            kind = {"directional": "SUN", "point": "POINT", "spot": "SPOT"}[li.kind]
            data = bpy.data.lights.new(f"l{k}", kind)
            data.color = li.color
            if kind == "SUN":
                data.energy = li.intensity * 0.35
                data.angle = math.radians(3.0)
            else:  # pyrender's candela-like intensity -> watts (4 pi sr), same brightness order
                data.energy = li.intensity * 4.0 * math.pi * 0.35
                data.shadow_soft_size = 0.1
                if kind == "SPOT":
                    data.spot_size = 1.4
                    data.spot_blend = 0.7
            ob = bpy.data.objects.new(f"l{k}", data)
            ob.matrix_basis = self._matrix(li.pose)
            sc.collection.objects.link(ob)
            self._frame_lights.append(ob)

    def render(self, fs: FrameSample, extra=None) -> PhotoFrame:
        """Render frame `fs`: Cycles RGB, object-index ids, Z depth; silhouettes by coverage."""
        from jobs.render.randomize import photo_extras

        if extra is None:
            extra = photo_extras(self.spec, fs)
        self.apply(fs, extra)
        sc = self.scene
        png, exr = Path(self._tmp.name) / "rgb.png", Path(self._tmp.name) / "passes.exr"
        self.bpy.ops.render.render(write_still=False)
        result = self.bpy.data.images["Render Result"]
        s = sc.render.image_settings
        s.media_type = "IMAGE"
        s.file_format, s.color_mode, s.color_depth, s.compression = "PNG", "RGB", "8", 0
        result.save_render(str(png), scene=sc)
        s.media_type = "MULTI_LAYER_IMAGE"
        s.file_format, s.color_depth, s.exr_codec = "OPEN_EXR_MULTILAYER", "32", "NONE"
        result.save_render(str(exr), scene=sc)
        with Image.open(png) as im:
            color = np.ascontiguousarray(np.asarray(im.convert("RGB")))
        ch = read_exr(exr)
        zkey = next(k for k in ch if k.endswith("Depth.Z"))
        ikey = next(k for k in ch if k.endswith(("IndexOB.X", "Object Index.X")))
        z = ch[zkey].astype(np.float32)
        n = len(fs.objects)
        ids = np.rint(ch[ikey]).astype(np.int64)
        ids[(ids < 0) | (ids > n)] = 0
        depth = np.where(z < self.spec.camera.zfar, z, 0.0).astype(np.float32)
        K = intrinsics(fs.yfov, self.width, self.height)
        V = np.linalg.inv(fs.camera_pose)
        sil = np.zeros(n, np.int64)
        trunc = np.zeros(n, np.float64)
        for k, o in enumerate(fs.objects):
            g = self.lib[o.asset]
            trunc[k] = project_object(g.corners, o.pose, o.scale, V, K, self.spec.camera.znear, self.width, self.height)
            if trunc[k] < 1.0:
                sil[k] = self._silhouette(g, o, V, K)
        return PhotoFrame(color=color, depth=depth, ids=ids.astype(np.uint32), silhouette_px=sil, truncation=trunc, K=K)

    def _silhouette(self, g: AssetGeometry, o, V: np.ndarray, K: np.ndarray) -> int:
        pos, idx = g.label_positions()
        p = (pos.astype(np.float64) * o.scale)
        M = V @ o.pose
        pc = (M[:3, :3] @ p.T).T + M[:3, 3]
        zn = self.spec.camera.znear
        tri = pc[idx.astype(np.int64)]  # (m, 3, 3)
        tri = tri[(tri[:, :, 2] < -zn).all(axis=1)]  # triangles crossing the near plane: left out
        u = K[0, 0] * tri[:, :, 0] / -tri[:, :, 2] + K[0, 2]
        v = K[1, 2] - K[1, 1] * tri[:, :, 1] / -tri[:, :, 2]
        # PIL fills a pixel whose centre (x + 0.5) lies inside: shift to its integer-centre grid
        return silhouette_pixels(np.stack([u - 0.5, v - 0.5], axis=-1), self.width, self.height)

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
