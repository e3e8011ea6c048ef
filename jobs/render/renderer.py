"""The GL side of the render engine: one pyrender renderer and one scene graph per job.

The scene is built once: the environment (shelf unit or table, floor, wall), a camera, and
pools of object, distractor and light nodes. A frame only moves nodes, changes material
factors and hides unused pool nodes (`mesh.is_visible = False`), so nothing is uploaded
again (FACTS.md: rebuilding the scene per frame was the bottleneck). Pools grow lazily to
the most objects a frame has needed; what a frame looks like depends only on its sample.

Threading: a `SceneRenderer` belongs to the thread that created it (GL contexts are
thread-bound). Import this module only after `select_gl_platform()`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass

import numpy as np

from jobs.render import art, geometry, pyrender_fast
from jobs.render.geometry import Part
from jobs.render.library import AssetGeometry
from jobs.render.sampling import FrameSample, intrinsics
from jobs.render.spec import SceneSpec, ShelfLayout

_SELECTED: dict | None = None
OSMESA_MIN_PYOPENGL = (3, 1, 5)  # older PyOpenGL lacks OSMesaCreateContextAttribs, which pyrender needs


GLPROBE_CODE = "import sys; from jobs.render.glprobe import main; sys.exit(main(sys.argv[1:]))"


def probe_command(plat: str) -> list[str]:
    """The child that probes `plat`: `python -I glprobe.py PLAT`, or in a frozen bundle (no
    interpreter to start) `kminer -c CODE PLAT`, which packaging/kminer_entry.py runs."""
    from jobs.render import glprobe

    if getattr(sys, "frozen", False):
        return [sys.executable, "-c", GLPROBE_CODE, plat]
    return [sys.executable, "-I", glprobe.__file__, plat]


def _probe(plat: str) -> str:
    """Run glprobe for `plat` in a child process: a driver that crashes or hangs while
    probing takes the child down, not this process."""
    from jobs.render import glprobe

    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    try:
        p = subprocess.run(probe_command(plat), env=env, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise glprobe.GLProbeError(f"probe did not finish: {e}") from None
    if p.returncode != 0:
        raise glprobe.GLProbeError((p.stderr.strip().splitlines() or [f"probe exited {p.returncode}"])[-1][:300])
    return p.stdout.strip()


def _pyopengl_version() -> tuple[int, ...]:
    import importlib.metadata as md

    try:
        return tuple(int(x) for x in md.version("PyOpenGL").split(".")[:3] if x.isdigit())
    except md.PackageNotFoundError:
        return ()


def select_gl_platform() -> dict:
    """Choose the offscreen GL platform for this process, before OpenGL is first imported.

    Returns {"platform": "egl" | "osmesa" | ..., "fallback": why EGL was not used, or None}
    and sets `PYOPENGL_PLATFORM` accordingly; the first answer is kept for the process.
    Unset or "egl" (the default the app and the sandbox pass on): EGL is probed (glprobe,
    in a child process, ~0.15 s) and, when it fails, OSMesa is probed and used instead.
    Any other value (e.g. "osmesa") is used as given, unprobed; so is the native
    (pyglet) context on a desktop OS with the variable unset, or a platform already
    loaded. Raises RuntimeError when neither EGL nor OSMesa works.
    """
    global _SELECTED
    if _SELECTED is not None:
        return dict(_SELECTED)
    requested = os.environ.get("PYOPENGL_PLATFORM", "")
    if "OpenGL" in sys.modules or requested not in ("", "egl") or (not requested and sys.platform != "linux"):
        _SELECTED = {"platform": requested or "native", "fallback": None}
        return dict(_SELECTED)
    from jobs.render.glprobe import GLProbeError

    try:
        _probe("egl")
        chosen, why = "egl", None
    except GLProbeError as e:
        why = f"EGL: {e}"
        if _pyopengl_version() < OSMESA_MIN_PYOPENGL:
            raise RuntimeError(f"no offscreen OpenGL: {why}; OSMesa needs PyOpenGL >= 3.1.5") from None
        try:
            _probe("osmesa")
        except GLProbeError as e2:
            raise RuntimeError(f"no offscreen OpenGL: {why}; OSMesa: {e2}") from None
        chosen = "osmesa"
    os.environ["PYOPENGL_PLATFORM"] = chosen
    _SELECTED = {"platform": chosen, "fallback": why}
    return dict(_SELECTED)


@dataclass
class RawFrame:
    """What the GL thread hands to the writer: pixels and per-object pixel counts.

    Depth travels as the id pass's window depth; `depth` (metres) is computed on first use,
    so that NumPy work lands on a writer thread, not on the GL thread.
    """

    color: np.ndarray  # (H, W, 3) uint8
    zbuf: np.ndarray  # (H, W) float32 window depth in [0, 1], 1 = nothing
    znear: float
    zfar: float
    ids: np.ndarray  # (H, W) uint32 instance id (0 = background / environment / distractor)
    silhouette_px: np.ndarray  # (N,) pixels of each object's unoccluded silhouette inside the image
    truncation: np.ndarray  # (N,) fraction of each object's projected box outside the image
    K: np.ndarray  # (3, 3)

    @property
    def depth(self) -> np.ndarray:
        """(H, W) float32 metres along the view axis, 0 = nothing."""
        from jobs.render.glpass import linear_depth

        return linear_depth(self.zbuf, self.znear, self.zfar)


def _ordered_scene_class(pyrender):
    """A pyrender Scene whose node collections iterate in name order, not set order.

    pyrender keeps nodes in sets (iteration order follows memory addresses); the lit
    pass's light loop and draw order come from that order, so floating-point sums and
    depth ties could differ between two runs of the same frame. Sorted by name, they don't.
    """

    class OrderedScene(pyrender.Scene):
        @property
        def mesh_nodes(self):
            return sorted(self._mesh_nodes, key=lambda n: n.name)

        @property
        def light_nodes(self):
            return sorted(self._point_light_nodes | self._spot_light_nodes | self._directional_light_nodes, key=lambda n: n.name)

        # Every node here is a leaf under the world node, so adding or removing one leaves
        # the others' paths unchanged; stock pyrender drops its whole path cache instead,
        # and then pays a networkx search per node on the next frame.
        def add_node(self, node, parent_node=None):
            cache = self._path_cache
            super().add_node(node, parent_node=parent_node)
            self._path_cache = cache

        def remove_node(self, node):
            cache = self._path_cache
            super().remove_node(node)
            cache.pop(node, None)
            self._path_cache = cache

    return OrderedScene


def _material(pyrender, color=(1.0, 1.0, 1.0, 1.0), rough=0.6, metal=0.0, texture=None):
    return pyrender.MetallicRoughnessMaterial(baseColorFactor=color, roughnessFactor=rough, metallicFactor=metal,
                                              baseColorTexture=texture, doubleSided=False)


def _primitive(pyrender, part: Part, material):
    return pyrender.Primitive(positions=part.positions, normals=part.normals,
                              texcoord_0=part.uvs if material.baseColorTexture is not None else None,
                              indices=part.indices, material=material, mode=4)


def _texture(pyrender, img: np.ndarray):
    # RGBA (4 bytes a pixel): RGB rows of a width not divisible by 4 break GL's default
    # unpack alignment, and the upload then reads past the array (garbage at label edges)
    rgba = np.concatenate([img, np.full(img.shape[:2] + (1,), 255, np.uint8)], axis=2)
    return pyrender.Texture(source=np.ascontiguousarray(rgba), source_channels="RGBA")


class SceneRenderer:
    """Renders `FrameSample`s of one scene spec: lit RGB, instance ids, depth, silhouettes."""

    def __init__(self, spec: SceneSpec, library: list[AssetGeometry], background: np.ndarray | None = None):
        import pyrender

        from jobs.render import glpass

        self._pr = pyrender
        self._gp = glpass
        self.uniform_cache = pyrender_fast.install_uniform_cache(pyrender)
        self.spec = spec
        self.lib = library
        self.width, self.height = spec.outputs.width, spec.outputs.height
        self.renderer = pyrender.OffscreenRenderer(self.width, self.height)
        self.fast_paths = pyrender_fast.install_renderer_fast_paths(self.renderer)
        self.scene = _ordered_scene_class(pyrender)(bg_color=(0.7, 0.7, 0.7, 1.0), ambient_light=(0.3, 0.3, 0.3))
        cam = spec.camera
        self.camera = pyrender.PerspectiveCamera(yfov=1.0, znear=cam.znear, zfar=cam.zfar, aspectRatio=self.width / self.height)
        self.cam_node = self.scene.add(self.camera, name="camera", pose=np.eye(4))
        self._flags = pyrender.RenderFlags.NONE
        if spec.lights.shadows:
            if not hasattr(np, "infty"):  # pyrender 0.1.45's shadow code still uses NumPy 1's alias
                np.infty = np.inf
            self._flags |= pyrender.RenderFlags.SHADOWS_DIRECTIONAL | pyrender.RenderFlags.SHADOWS_SPOT
        self._textures = [[_texture(pyrender, img) for img in g.labels] for g in library]
        self._pool: dict[tuple[int, int], list] = {}
        self._dpool: dict[int, list] = {}
        self._lights: dict[str, list] = {}
        self._shown: list = []
        self._lit: list = []
        self._env_parts: list[Part] = []
        self._build_environment(background)
        self._build_lights()
        self._label = None  # LabelPass, made on first render (needs the context)
        self._shapes: list = []
        self._dshapes: list = []
        self._env_shape = None
        self.gl_info: dict = {}

    # ----------------------------------------------------------------- environment
    def _env_mesh(self, parts: list[Part], material) -> None:
        mesh = self._pr.Mesh([_primitive(self._pr, p, material) for p in geometry.merge_roles(parts)])
        self.scene.add(mesh, name=f"env-{len(self._env_parts):04d}")
        self._env_parts += parts

    def _build_environment(self, background: np.ndarray | None) -> None:
        pr = self._pr
        lay = self.spec.layout
        self.env_mat = _material(pr, rough=0.6)
        self.wall_mat = _material(pr, rough=0.9, texture=_texture(pr, background) if background is not None else None)
        floor_mat = _material(pr, color=(0.55, 0.53, 0.5, 1.0), rough=0.8)
        mats = {"env": self.env_mat, "floor": floor_mat, "wall": self.wall_mat}
        if isinstance(lay, ShelfLayout) and lay.price_tags:
            strip = art.price_strip(self.spec.name, lay.width)
            pad = np.full((strip.shape[0], strip.shape[1] // 3, 3), 70, np.uint8)
            mats["tags"] = _material(pr, rough=0.5, texture=_texture(pr, np.concatenate([strip, pad], axis=1)))
        for role, parts in geometry.environment_parts(self.spec):
            self._env_mesh(parts, mats[role])

    # ----------------------------------------------------------------- pools
    def _new_slot(self, asset: int, variant: int):
        pr = self._pr
        g = self.lib[asset]
        if g.trimesh is not None:
            mesh = pr.Mesh.from_trimesh(g.trimesh, smooth=False)
            for p in mesh.primitives:
                p.material.doubleSided = False
            base = [np.asarray(p.material.baseColorFactor, float).copy() for p in mesh.primitives]
            node = self.scene.add(mesh, name=self._slot_name(asset, variant), pose=np.eye(4))
            return node, [(p.material, "tint", b) for p, b in zip(mesh.primitives, base)]
        tex = self._textures[asset][variant] if self._textures[asset] else None
        has_body = any(p.role == "body" for p in g.parts)
        prims, mats = [], []
        for part in g.parts:
            if part.role == "label":
                m = _material(pr, texture=tex)
                mats.append((m, "white" if has_body else "tint", None))
            elif part.role == "metal":
                m = _material(pr, color=(0.78, 0.78, 0.8, 1.0), rough=0.3, metal=0.9)
            elif part.role == "cap":
                m = _material(pr, color=(*g.cap_color, 1.0), rough=0.4)
            else:
                m = _material(pr)
                mats.append((m, "tint", None))
            prims.append(_primitive(pr, part, m))
        node = self.scene.add(pr.Mesh(prims), name=self._slot_name(asset, variant), pose=np.eye(4))
        return node, mats

    def _slot_name(self, asset: int, variant: int) -> str:
        return f"obj-{asset:04d}-{variant:04d}-{len(self._pool.get((asset, variant), [])):05d}"

    def _slot(self, key: tuple[int, int], k: int):
        pool = self._pool.setdefault(key, [])
        while len(pool) <= k:
            pool.append(self._new_slot(*key))
        return pool[k]

    def _dslot(self, shape: int, k: int):
        pool = self._dpool.setdefault(shape, [])
        while len(pool) <= k:
            m = _material(self._pr, rough=0.5)
            node = self.scene.add(self._pr.Mesh([_primitive(self._pr, p, m) for p in _distractor_parts(shape)]),
                                  name=f"dis-{shape}-{len(pool):05d}", pose=np.eye(4))
            pool.append((node, m))
        return pool[k]

    def _build_lights(self) -> None:
        """The most lights a frame can use, of every kind the spec allows, made once."""
        pr = self._pr
        for kind in dict.fromkeys(self.spec.lights.kinds):
            pool = self._lights.setdefault(kind, [])
            for k in range(self.spec.lights.count[1]):
                light = (pr.DirectionalLight() if kind == "directional" else pr.PointLight() if kind == "point"
                         else pr.SpotLight(innerConeAngle=0.2, outerConeAngle=0.7))
                pool.append(pr.Node(name=f"light-{kind}-{k:03d}", light=light, matrix=np.eye(4)))

    def reserve(self, frames: list[FrameSample]) -> None:
        """Create the pool nodes `frames` need up front (their GL upload then happens on the
        next render instead of mid-run). Changes no pixel: pools only hold reusable nodes."""
        need: dict[tuple[int, int], int] = {}
        dneed: dict[int, int] = {}
        for fs in frames:
            c: dict[tuple[int, int], int] = {}
            for o in fs.objects:
                c[(o.asset, o.variant)] = c.get((o.asset, o.variant), 0) + 1
            for k, v in c.items():
                need[k] = max(need.get(k, 0), v)
            dc: dict[int, int] = {}
            for d in fs.distractors:
                dc[d.shape] = dc.get(d.shape, 0) + 1
            for k, v in dc.items():
                dneed[k] = max(dneed.get(k, 0), v)
        for key, n in sorted(need.items()):
            self._slot(key, n - 1)
            for node, _mats in self._pool[key]:
                node.mesh.is_visible = node in self._shown
        for shape, n in sorted(dneed.items()):
            self._dslot(shape, n - 1)
            for node, _mat in self._dpool[shape]:
                node.mesh.is_visible = node in self._shown

    # ----------------------------------------------------------------- per frame
    def apply(self, fs: FrameSample) -> None:
        """Pose and paint the scene graph for frame `fs` (hides what the frame does not use)."""
        sc = self.scene
        for node in self._shown:
            node.mesh.is_visible = False
        self._shown = []
        sc.bg_color = np.array([*fs.bg_color, 1.0])
        sc.ambient_light = np.array([fs.ambient] * 3)
        self.env_mat.baseColorFactor = fs.env_color
        self.env_mat.roughnessFactor = fs.env_roughness
        self.wall_mat.baseColorFactor = (*fs.bg_color, 1.0) if self.wall_mat.baseColorTexture is None else (1.0, 1.0, 1.0, 1.0)
        self.camera.yfov = fs.yfov
        sc.set_pose(self.cam_node, fs.camera_pose)
        used: dict[tuple[int, int], int] = {}
        for o in fs.objects:
            key = (o.asset, o.variant)
            k = used.get(key, 0)
            used[key] = k + 1
            node, mats = self._slot(key, k)
            for mat, how, base in mats:
                if how == "white":
                    mat.baseColorFactor = (1.0, 1.0, 1.0, 1.0)
                else:
                    c = np.asarray(o.color) * (base if base is not None else 1.0)
                    mat.baseColorFactor = (float(c[0]), float(c[1]), float(c[2]), 1.0)
                mat.roughnessFactor = o.roughness
                mat.metallicFactor = o.metalness
            sc.set_pose(node, o.pose @ np.diag([*o.scale, 1.0]))
            node.mesh.is_visible = True
            self._shown.append(node)
        dused: dict[int, int] = {}
        for d in fs.distractors:
            k = dused.get(d.shape, 0)
            dused[d.shape] = k + 1
            node, mat = self._dslot(d.shape, k)
            mat.baseColorFactor = d.color
            sc.set_pose(node, d.pose @ np.diag([*d.scale, 1.0]))
            node.mesh.is_visible = True
            self._shown.append(node)
        # only this frame's lights are in the scene: each light costs a dozen uniforms per
        # primitive drawn (the scene keeps its pose cache across add/remove, see above)
        for node in self._lit:
            sc.remove_node(node)
        self._lit = []
        lused: dict[str, int] = {}
        for li in fs.lights:
            k = lused.get(li.kind, 0)
            lused[li.kind] = k + 1
            node = self._lights[li.kind][k]
            node.light.color = np.asarray(li.color)
            node.light.intensity = li.intensity
            sc.add_node(node)
            self._lit.append(node)
            sc.set_pose(node, li.pose)

    def render_color(self) -> np.ndarray:
        """The lit, anti-aliased RGB pass of the applied frame (pyrender)."""
        color, _depth = self.renderer.render(self.scene, flags=self._flags)
        return color

    def _init_label_pass(self) -> None:
        from OpenGL import GL

        gp = self._gp
        self._label = gp.LabelPass(self.width, self.height)
        self._shapes = []
        for g in self.lib:
            pos, idx = g.label_positions()
            self._shapes.append(gp.Shape(pos, idx))
        self._dshapes = []
        for s in range(3):
            parts = _distractor_parts(s)
            self._dshapes.append(gp.Shape(np.concatenate([p.positions for p in parts]), parts[0].indices))
        pos, idx, off = [], [], 0
        for p in self._env_parts:
            pos.append(p.positions)
            idx.append(p.indices + off)
            off += len(p.positions)
        self._env_shape = gp.Shape(np.concatenate(pos), np.concatenate(idx))
        self.gl_info = {"renderer": GL.glGetString(GL.GL_RENDERER).decode(), "version": GL.glGetString(GL.GL_VERSION).decode(),
                        "vendor": GL.glGetString(GL.GL_VENDOR).decode()}

    def render(self, fs: FrameSample) -> RawFrame:
        """Apply `fs`, run the label passes, then the lit RGB pass; all on the calling (GL) thread.

        The id pass runs first so that objects it finds completely hidden (the back rows of
        a shelf) are left out of the expensive lit pass; they cannot change its pixels
        (no shadows; with shadows on, nothing is left out).
        """
        self.apply(fs)
        plat = self.renderer._platform  # pyrender leaves the context un-current after render
        plat.make_current()
        try:
            if self._label is None:
                self._init_label_pass()
            P = self.camera.get_projection_matrix(self.width, self.height)
            V = np.linalg.inv(fs.camera_pose)
            PV = P @ V
            n = len(fs.objects)
            items, ids = [(self._env_shape, PV.astype(np.float32))], [0]
            obj_items = []
            for o in fs.objects:
                mvp = (PV @ o.pose @ np.diag([*o.scale, 1.0])).astype(np.float32)
                obj_items.append((self._shapes[o.asset], mvp))
                ids.append(o.instance_id)
            items += obj_items
            for j, d in enumerate(fs.distractors):
                items.append((self._dshapes[d.shape], (PV @ d.pose @ np.diag([*d.scale, 1.0])).astype(np.float32)))
                ids.append(n + 1 + j)
            idimg, zbuf = self._label.ids_and_zbuffer(items, ids)
            K = intrinsics(fs.yfov, self.width, self.height)
            projected = [self._project(o, V, K) for o in fs.objects]
            sil = self._label.silhouette_pixels(obj_items, [p[1] for p in projected])
        finally:
            plat.make_uncurrent()
        if not self.spec.lights.shadows:
            seen = np.bincount(idimg.ravel(), minlength=n + len(fs.distractors) + 1) > 0
            for k, node in enumerate(self._shown):  # objects first, then distractors
                if not seen[k + 1]:
                    node.mesh.is_visible = False
        color = self.render_color()
        idimg[idimg > n] = 0  # distractors are not objects
        trunc = np.array([p[0] for p in projected], dtype=np.float64)
        return RawFrame(color=np.ascontiguousarray(color), zbuf=zbuf, znear=self.camera.znear, zfar=self.camera.zfar,
                        ids=idimg, silhouette_px=sil, truncation=trunc, K=K)

    def _project(self, o, V: np.ndarray, K: np.ndarray) -> tuple[float, tuple[int, int, int, int] | None]:
        """(truncation, scissor box) of an object from its projected bounding-box corners.

        truncation = share of the projected box outside the image (0.5 at least when part of
        the object is behind the camera). The scissor box is in GL window coordinates
        (origin bottom-left), padded by a pixel; None when it cannot be bounded.
        """
        c = self.lib[o.asset].corners * o.scale
        cw = (o.pose[:3, :3] @ c.T).T + o.pose[:3, 3]
        cc = (V[:3, :3] @ cw.T).T + V[:3, 3]
        front = cc[:, 2] < -self.camera.znear
        if not front.any():
            return 1.0, (0, 0, 0, 0)
        pc = cc[front]
        u = K[0, 0] * pc[:, 0] / -pc[:, 2] + K[0, 2]
        v = K[1, 2] - K[1, 1] * pc[:, 1] / -pc[:, 2]
        x0, x1, y0, y1 = u.min(), u.max(), v.min(), v.max()
        area = max(x1 - x0, 1e-9) * max(y1 - y0, 1e-9)
        cx0, cx1 = max(x0, 0.0), min(x1, float(self.width))
        cy0, cy1 = max(y0, 0.0), min(y1, float(self.height))
        inside = max(cx1 - cx0, 0.0) * max(cy1 - cy0, 0.0)
        t = 1.0 - inside / area
        if not front.all():
            return float(min(1.0, max(0.5, t))), None
        if inside <= 0:
            return 1.0, (0, 0, 0, 0)
        bx0, bx1 = max(int(np.floor(cx0)) - 1, 0), min(int(np.ceil(cx1)) + 1, self.width)
        by0, by1 = max(int(np.floor(cy0)) - 1, 0), min(int(np.ceil(cy1)) + 1, self.height)
        box = (bx0, self.height - by1, bx1 - bx0, by1 - by0)  # flip rows: GL's origin is bottom-left
        return float(min(1.0, max(0.0, t))), box

    def close(self) -> None:
        if self.renderer is not None:
            self.renderer.delete()
            self.renderer = None


def _distractor_parts(shape: int) -> list[Part]:
    return geometry.distractor_parts(shape)
