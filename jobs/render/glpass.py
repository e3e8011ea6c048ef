"""The label passes: instance ids, depth and full silhouettes, drawn without MSAA.

pyrender's own segmentation pass draws into its 4x multisampled framebuffer, which blends
id colours at object edges (FACTS.md), so the labels get their own single-sample
framebuffer (colour + depth/stencil) and a two-line shader here. Silhouettes are counted
by occlusion queries, never read back as images. Geometry is uploaded once per shape (one vertex
array per asset, not per object) and drawn with a model-view-projection per object.

Threading: every method must run on the thread that owns the GL context, with the context
current (the caller makes it current; see `SceneRenderer`).
"""

from __future__ import annotations

import ctypes

import numpy as np
from OpenGL import GL
from OpenGL.GL import shaders

_VS = """#version 330 core
layout(location = 0) in vec3 position;
uniform mat4 MVP;
void main() { gl_Position = MVP * vec4(position, 1.0); }
"""
_FS = """#version 330 core
uniform vec4 color;
out vec4 frag_color;
void main() { frag_color = color; }
"""



class Shape:
    """One vertex array on the GPU (positions + triangle indices); `cull` mirrors the lit pass."""

    def __init__(self, positions: np.ndarray, indices: np.ndarray, cull: bool = True):
        pos = np.ascontiguousarray(positions, dtype=np.float32)
        idx = np.ascontiguousarray(indices, dtype=np.uint32).ravel()
        self.count = int(idx.size)
        self.cull = cull
        self.vao = GL.glGenVertexArrays(1)
        GL.glBindVertexArray(self.vao)
        self._vbo, self._ebo = GL.glGenBuffers(2)
        GL.glBindBuffer(GL.GL_ARRAY_BUFFER, self._vbo)
        GL.glBufferData(GL.GL_ARRAY_BUFFER, pos.nbytes, pos, GL.GL_STATIC_DRAW)
        GL.glEnableVertexAttribArray(0)
        GL.glVertexAttribPointer(0, 3, GL.GL_FLOAT, GL.GL_FALSE, 12, ctypes.c_void_p(0))
        GL.glBindBuffer(GL.GL_ELEMENT_ARRAY_BUFFER, self._ebo)
        GL.glBufferData(GL.GL_ELEMENT_ARRAY_BUFFER, idx.nbytes, idx, GL.GL_STATIC_DRAW)
        GL.glBindVertexArray(0)

    def delete(self) -> None:
        GL.glDeleteVertexArrays(1, [self.vao])
        GL.glDeleteBuffers(2, [self._vbo, self._ebo])


class LabelPass:
    """Single-sample framebuffer + flat shader for the id, depth and silhouette passes."""

    def __init__(self, width: int, height: int):
        self.width, self.height = width, height
        self.program = shaders.compileProgram(
            shaders.compileShader(_VS, GL.GL_VERTEX_SHADER), shaders.compileShader(_FS, GL.GL_FRAGMENT_SHADER))
        self._u_mvp = GL.glGetUniformLocation(self.program, "MVP")
        self._u_color = GL.glGetUniformLocation(self.program, "color")
        self._cb, self._db = GL.glGenRenderbuffers(2)
        GL.glBindRenderbuffer(GL.GL_RENDERBUFFER, self._cb)
        GL.glRenderbufferStorage(GL.GL_RENDERBUFFER, GL.GL_RGBA8, width, height)
        GL.glBindRenderbuffer(GL.GL_RENDERBUFFER, self._db)
        GL.glRenderbufferStorage(GL.GL_RENDERBUFFER, GL.GL_DEPTH24_STENCIL8, width, height)
        self.fbo = GL.glGenFramebuffers(1)
        GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, self.fbo)
        GL.glFramebufferRenderbuffer(GL.GL_FRAMEBUFFER, GL.GL_COLOR_ATTACHMENT0, GL.GL_RENDERBUFFER, self._cb)
        GL.glFramebufferRenderbuffer(GL.GL_FRAMEBUFFER, GL.GL_DEPTH_STENCIL_ATTACHMENT, GL.GL_RENDERBUFFER, self._db)
        self._queries = np.zeros(0, dtype=np.uint32)
        status = GL.glCheckFramebufferStatus(GL.GL_FRAMEBUFFER)
        GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, 0)
        if status != GL.GL_FRAMEBUFFER_COMPLETE:
            raise RuntimeError(f"label framebuffer incomplete (status 0x{status:x})")

    def _begin(self) -> None:
        GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, self.fbo)
        GL.glViewport(0, 0, self.width, self.height)
        GL.glDisable(GL.GL_MULTISAMPLE)
        GL.glDisable(GL.GL_BLEND)
        GL.glPolygonMode(GL.GL_FRONT_AND_BACK, GL.GL_FILL)
        GL.glUseProgram(self.program)

    def _end(self) -> None:
        GL.glBindVertexArray(0)
        GL.glUseProgram(0)
        GL.glDisable(GL.GL_STENCIL_TEST)
        GL.glDisable(GL.GL_SCISSOR_TEST)
        GL.glColorMask(GL.GL_TRUE, GL.GL_TRUE, GL.GL_TRUE, GL.GL_TRUE)
        GL.glDepthMask(GL.GL_TRUE)
        GL.glEnable(GL.GL_DEPTH_TEST)
        GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, 0)

    def _draw(self, items, color_of) -> None:
        bound = None
        cull = None
        for k, (shape, mvp) in enumerate(items):
            if shape.cull != cull:
                cull = shape.cull
                (GL.glEnable if cull else GL.glDisable)(GL.GL_CULL_FACE)
                GL.glCullFace(GL.GL_BACK)
            if shape.vao != bound:
                GL.glBindVertexArray(shape.vao)
                bound = shape.vao
            GL.glUniformMatrix4fv(self._u_mvp, 1, GL.GL_TRUE, mvp)
            GL.glUniform4f(self._u_color, *color_of(k))
            GL.glDrawElements(GL.GL_TRIANGLES, shape.count, GL.GL_UNSIGNED_INT, ctypes.c_void_p(0))

    def ids_and_zbuffer(self, items: list[tuple[Shape, np.ndarray]], ids: list[int]):
        """Draw `items` (shape, float32 MVP) with their ids (0 = not an object).

        Returns (ids uint32 HxW, window depth float32 HxW in [0, 1], 1 where nothing was
        drawn), rows top first; `linear_depth` turns the second into metres (off the GL thread).
        """
        self._begin()
        GL.glClearColor(0.0, 0.0, 0.0, 0.0)
        GL.glClearDepth(1.0)
        GL.glClear(GL.GL_COLOR_BUFFER_BIT | GL.GL_DEPTH_BUFFER_BIT)
        GL.glEnable(GL.GL_DEPTH_TEST)
        GL.glDepthFunc(GL.GL_LESS)
        GL.glDepthMask(GL.GL_TRUE)

        def color(k: int):
            i = ids[k]
            return ((i & 255) / 255.0, ((i >> 8) & 255) / 255.0, ((i >> 16) & 255) / 255.0, 1.0)

        self._draw(items, color)
        w, h = self.width, self.height
        rgba = GL.glReadPixels(0, 0, w, h, GL.GL_RGBA, GL.GL_UNSIGNED_BYTE)
        d = GL.glReadPixels(0, 0, w, h, GL.GL_DEPTH_COMPONENT, GL.GL_FLOAT)
        self._end()
        idimg = np.frombuffer(rgba, dtype=np.uint32).reshape(h, w)[::-1] & 0xFFFFFF
        return np.ascontiguousarray(idimg), np.frombuffer(d, dtype=np.float32).reshape(h, w)[::-1]

    def ids_and_depth(self, items: list[tuple[Shape, np.ndarray]], ids: list[int], znear: float, zfar: float):
        """`ids_and_zbuffer` with the depth in metres (float32, 0 where nothing was drawn)."""
        idimg, zb = self.ids_and_zbuffer(items, ids)
        return idimg, linear_depth(zb, znear, zfar)

    def silhouette_pixels(self, items: list[tuple[Shape, np.ndarray]], boxes: list[tuple[int, int, int, int] | None]) -> np.ndarray:
        """Pixels inside the image covered by each item's full, unoccluded silhouette.

        One occlusion query per object, depth test off, stencil "first touch only" so a
        pixel counts once however many of the object's faces cover it. `boxes` (GL window
        coordinates x, y, w, h, or None for the whole image) bound each object's projection:
        the stencil is cleared only there (a scissored clear), and an empty box skips the draw.
        """
        n = len(items)
        counts = np.zeros(n, dtype=np.int64)
        if n == 0:
            return counts
        if len(self._queries) < n:
            if len(self._queries):
                GL.glDeleteQueries(len(self._queries), self._queries)
            self._queries = np.asarray(GL.glGenQueries(max(n, 2 * len(self._queries))), dtype=np.uint32).ravel()
        self._begin()
        GL.glDisable(GL.GL_DEPTH_TEST)
        GL.glDepthMask(GL.GL_FALSE)
        GL.glColorMask(GL.GL_FALSE, GL.GL_FALSE, GL.GL_FALSE, GL.GL_FALSE)
        GL.glDisable(GL.GL_CULL_FACE)
        GL.glEnable(GL.GL_STENCIL_TEST)
        GL.glStencilMask(0xFF)
        GL.glStencilFunc(GL.GL_EQUAL, 0, 0xFF)
        GL.glStencilOp(GL.GL_KEEP, GL.GL_KEEP, GL.GL_INCR)
        GL.glClearStencil(0)
        GL.glEnable(GL.GL_SCISSOR_TEST)
        used = []
        bound = None
        for k, ((shape, mvp), box) in enumerate(zip(items, boxes)):
            x, y, w, h = box if box is not None else (0, 0, self.width, self.height)
            if w <= 0 or h <= 0:
                continue
            GL.glScissor(x, y, w, h)
            GL.glClear(GL.GL_STENCIL_BUFFER_BIT)
            if shape.vao != bound:
                GL.glBindVertexArray(shape.vao)
                bound = shape.vao
            GL.glUniformMatrix4fv(self._u_mvp, 1, GL.GL_TRUE, mvp)
            q = int(self._queries[k])
            GL.glBeginQuery(GL.GL_SAMPLES_PASSED, q)
            GL.glDrawElements(GL.GL_TRIANGLES, shape.count, GL.GL_UNSIGNED_INT, ctypes.c_void_p(0))
            GL.glEndQuery(GL.GL_SAMPLES_PASSED)
            used.append(k)
        buf = np.zeros(1, dtype=np.uint32)
        for k in used:
            GL.glGetQueryObjectuiv(int(self._queries[k]), GL.GL_QUERY_RESULT, buf)
            counts[k] = int(buf[0])
        self._end()
        return counts

    def delete(self) -> None:
        GL.glDeleteFramebuffers(1, [self.fbo])
        GL.glDeleteRenderbuffers(2, [self._cb, self._db])
        GL.glDeleteProgram(self.program)
        if len(self._queries):
            GL.glDeleteQueries(len(self._queries), self._queries)


def linear_depth(zb: np.ndarray, znear: float, zfar: float) -> np.ndarray:
    """Window depth ([0, 1], perspective) -> distance along the view axis in metres, float32;
    0 where nothing was drawn (zb = 1). Pure NumPy: runs on writer threads."""
    empty = zb >= 1.0
    ndc = 2.0 * zb.astype(np.float64) - 1.0
    depth = (2.0 * znear * zfar) / (zfar + znear - ndc * (zfar - znear))
    depth[empty] = 0.0
    return depth.astype(np.float32)
