"""Faster paths through pyrender 0.1.45 for the render engine; not one pixel changes.

Each patch removes work whose result is thrown away or already in place: uniform
locations looked up once, camera matrices and light uniforms set once per program and
frame instead of once per primitive, hidden pool nodes left out of the per-frame depth
sort, no depth readback after the lit pass (the engine has its own), and on OSMesa shader
programs compiled once instead of for every primitive of every frame. Tests compare
patched and stock output byte for byte. `KMINER_RENDER_PLAIN_PYRENDER=1` leaves pyrender
stock (the benchmark's bare baseline). pyrender is imported only inside the functions.
"""

from __future__ import annotations

import os
import sys
import types

import numpy as np

_PER_FRAME_MATRICES = frozenset({"V", "P"})

PLAIN_PYRENDER_ENV = "KMINER_RENDER_PLAIN_PYRENDER"  # "1": leave pyrender unpatched (bench baseline)


def install_uniform_cache(pyrender) -> bool:
    """Make pyrender's `ShaderProgram.set_uniform` look each uniform location up once.

    Stock pyrender calls glGetUniformLocation on every uniform of every primitive of
    every frame (about 15 % of a shelf frame's CPU time here). Locations never change
    for a linked program, so caching them per program changes no pixel. Process-wide and
    idempotent; returns whether the cache is active.
    """
    if os.environ.get(PLAIN_PYRENDER_ENV) == "1":
        return False
    from pyrender import shader_program as sp

    cls = sp.ShaderProgram
    if getattr(cls, "_kminer_cached", False):
        return True
    GL = sp  # pyrender.shader_program re-exports OpenGL.GL's functions

    def set_uniform(self, name, value, unsigned=False):
        # pyrender 0.1.45's set_uniform with the location cached per (program, name)
        if name in _PER_FRAME_MATRICES:
            # pyrender passes the same V and P array objects for every primitive of a frame
            # (fresh ones each frame, never changed in place): a program that has them
            # already keeps them (GL uniforms persist per program)
            last = self.__dict__.setdefault("_kminer_last", {})
            if last.get(name) is value:
                return
            last[name] = value
        cache = self.__dict__.setdefault("_kminer_locs", {})
        key = (self._program_id, name)
        loc = cache.get(key)
        if loc is None:
            loc = cache[key] = GL.glGetUniformLocation(self._program_id, name)
        if loc == -1:
            return  # stock pyrender swallows unknown names too
        if isinstance(value, np.ndarray):
            if value.ndim == 1:
                if np.issubdtype(value.dtype, np.unsignedinteger) or unsigned:
                    dtype, value = "u", value.astype(np.uint32)
                elif np.issubdtype(value.dtype, np.integer):
                    dtype, value = "i", value.astype(np.int32)
                else:
                    dtype, value = "f", value.astype(np.float32)
                self._FUNC_MAP[(value.shape[0], dtype)](loc, 1, value)
            else:
                self._FUNC_MAP[(value.shape[0], value.shape[1])](loc, 1, GL.GL_TRUE, value)
        elif isinstance(value, float):
            GL.glUniform1f(loc, value)
        elif isinstance(value, (bool, int)):
            (GL.glUniform1ui if unsigned else GL.glUniform1i)(loc, int(value))

    cls.set_uniform = set_uniform
    cls._kminer_cached = True
    return True


def _install_color_only_readback(offscreen) -> bool:
    """Make one `OffscreenRenderer` read back only colour after its lit pass.

    Stock pyrender also blits and reads the depth buffer and linearises it in NumPy on
    every frame (a few ms of CPU at 640x480); the engine takes depth from its own
    id pass, so that work is thrown away. The colour bytes are the very same (the same
    multisample resolve blit and glReadPixels). Only this renderer instance is changed,
    only on the framebuffer path (EGL; OSMesa draws to its own buffer) and only for plain
    RGB renders; returns whether it is active.
    """
    if sys.platform == "darwin":
        return False
    from pyrender import renderer as prr  # re-exports OpenGL.GL's names
    from pyrender.constants import RenderFlags

    inner = offscreen._renderer
    if not offscreen._platform.supports_framebuffers():
        return False
    stock = prr.Renderer._read_main_framebuffer
    special = RenderFlags.DEPTH_ONLY | RenderFlags.RGBA | RenderFlags.SEG

    def read(self, scene, flags):
        if flags & special:
            return stock(self, scene, flags)
        w, h = self._main_fb_dims
        prr.glBindFramebuffer(prr.GL_READ_FRAMEBUFFER, self._main_fb_ms)
        prr.glBindFramebuffer(prr.GL_DRAW_FRAMEBUFFER, self._main_fb)
        prr.glBlitFramebuffer(0, 0, w, h, 0, 0, w, h, prr.GL_COLOR_BUFFER_BIT, prr.GL_LINEAR)
        prr.glBindFramebuffer(prr.GL_READ_FRAMEBUFFER, self._main_fb)
        buf = prr.glReadPixels(0, 0, w, h, prr.GL_RGB, prr.GL_UNSIGNED_BYTE)
        return np.frombuffer(buf, dtype=np.uint8).reshape(h, w, 3)[::-1], None

    inner._read_main_framebuffer = types.MethodType(read, inner)
    return True


def _install_frame_caches(offscreen) -> None:
    """Per-frame work of this renderer done once per frame instead of once per node or primitive.

    - `_sorted_mesh_nodes`: stock pyrender computes the pose of every mesh node (hidden pool
      nodes too) to sort them far to near; only visible nodes are drawn, and a stable sort
      of the visible ones gives them the same order.
    - `_bind_lighting`: stock pyrender sets every light's uniforms for every primitive; the
      values are the same for the whole frame, so once per program and frame is enough
      (not with shadows, whose texture bindings are reset per primitive, nor when lights
      are culled per node).
    """
    from pyrender.constants import RenderFlags

    inner = offscreen._renderer
    cls = type(inner)
    stock_render, stock_lighting = cls.render, cls._bind_lighting
    shadows = RenderFlags.SHADOWS_DIRECTIONAL | RenderFlags.SHADOWS_SPOT | RenderFlags.SHADOWS_POINT
    lit: set[int] = set()

    def render(self, scene, flags, seg_node_map=None):
        lit.clear()
        return stock_render(self, scene, flags, seg_node_map)

    def sorted_mesh_nodes(self, scene):
        cam_loc = scene.get_pose(scene.main_camera_node)[:3, 3]
        solid, trans = [], []
        for node in scene.mesh_nodes:
            if node.mesh.is_visible:
                (trans if node.mesh.is_transparent else solid).append(node)

        def key(n):
            return -np.linalg.norm(scene.get_pose(n)[:3, 3] - cam_loc)

        trans.sort(key=key)
        solid.sort(key=key)
        return solid + trans

    def bind_lighting(self, scene, program, node, flags):
        pid = program._program_id
        if pid in lit:
            return
        stock_lighting(self, scene, program, node, flags)
        most = self._compute_max_n_lights(flags)
        per_node = (len(scene.directional_light_nodes) > most[0] or len(scene.spot_light_nodes) > most[1]
                    or len(scene.point_light_nodes) > most[2])
        if not (flags & shadows) and not per_node:
            lit.add(pid)

    inner.render = types.MethodType(render, inner)
    inner._sorted_mesh_nodes = types.MethodType(sorted_mesh_nodes, inner)
    inner._bind_lighting = types.MethodType(bind_lighting, inner)


def _install_stable_program_cache(offscreen) -> None:
    """Compile each shader program once on OSMesa.

    pyrender keys its program cache by `OpenGL.contextdata.getContext()`, and PyOpenGL's
    OSMesa platform returns a new pointer object for the same context on every call: the
    key never matches, so stock pyrender recompiles the shaders of every primitive of every
    frame (about 100x slower than EGL here). One renderer has one context, so a key
    without it is exact; the programs compiled are the ones stock pyrender compiles.
    """
    cache = offscreen._renderer._program_cache
    stock = type(cache).get_program
    programs: dict = {}

    def get_program(self, vertex_shader, fragment_shader, geometry_shader=None, defines=None):
        key = (vertex_shader, fragment_shader, geometry_shader, tuple(sorted((defines or {}).items())))
        prog = programs.get(key)
        if prog is None:
            prog = programs[key] = stock(self, vertex_shader, fragment_shader, geometry_shader, defines)
        return prog

    cache.get_program = types.MethodType(get_program, cache)


def install_renderer_fast_paths(offscreen) -> bool:
    """Patch one `pyrender.OffscreenRenderer` instance (see the module docstring); returns
    whether the patches are active (not under KMINER_RENDER_PLAIN_PYRENDER=1)."""
    if os.environ.get(PLAIN_PYRENDER_ENV) == "1":
        return False
    _install_frame_caches(offscreen)
    if offscreen._platform.supports_framebuffers():
        _install_color_only_readback(offscreen)
    else:
        _install_stable_program_cache(offscreen)
    return True
