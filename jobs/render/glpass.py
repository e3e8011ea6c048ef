"""The label passes: instance ids, depth and full silhouettes, drawn without MSAA.

pyrender's own segmentation pass draws into its 4x multisampled framebuffer, which blends
id colours at object edges (FACTS.md), so the labels get their own single-sample
framebuffer and a two-line shader here. Geometry is uploaded once per shape (one vertex
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

BITS_PER_PASS = 32  # one bit of the RGBA8 target per object in the silhouette pass


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
        GL.glRenderbufferStorage(GL.GL_RENDERBUFFER, GL.GL_DEPTH_COMPONENT24, width, height)
        self.fbo = GL.glGenFramebuffers(1)
        GL.glBindFramebuffer(GL.GL_FRAMEBUFFER, self.fbo)
        GL.glFramebufferRenderbuffer(GL.GL_FRAMEBUFFER, GL.GL_COLOR_ATTACHMENT0, GL.GL_RENDERBUFFER, self._cb)
        GL.glFramebufferRenderbuffer(GL.GL_FRAMEBUFFER, GL.GL_DEPTH_ATTACHMENT, GL.GL_RENDERBUFFER, self._db)
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
        GL.glDisable(GL.GL_COLOR_LOGIC_OP)
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

    def ids_and_depth(self, items: list[tuple[Shape, np.ndarray]], ids: list[int], znear: float, zfar: float):
        """Draw `items` (shape, float32 MVP) with their ids (0 = not an object).

        Returns (ids uint32 HxW, depth float32 HxW in metres, 0 where nothing was drawn).
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
        zb = np.frombuffer(d, dtype=np.float32).reshape(h, w)[::-1]
        empty = zb >= 1.0
        ndc = 2.0 * zb.astype(np.float64) - 1.0
        depth = (2.0 * znear * zfar) / (zfar + znear - ndc * (zfar - znear))
        depth[empty] = 0.0
        return np.ascontiguousarray(idimg), depth.astype(np.float32)

    def silhouette_pixels(self, items: list[tuple[Shape, np.ndarray]]) -> np.ndarray:
        """Pixels inside the image covered by each item's full, unoccluded silhouette.

        Depth test off, colour logic OR: item k sets bit k % 32 of a pass, so 32 objects
        cost one draw each plus one read-back per 32.
        """
        counts = np.zeros(len(items), dtype=np.int64)
        self._begin()
        GL.glDisable(GL.GL_DEPTH_TEST)
        GL.glEnable(GL.GL_COLOR_LOGIC_OP)
        GL.glLogicOp(GL.GL_OR)
        GL.glClearColor(0.0, 0.0, 0.0, 0.0)
        w, h = self.width, self.height
        for start in range(0, len(items), BITS_PER_PASS):
            chunk = items[start:start + BITS_PER_PASS]
            GL.glClear(GL.GL_COLOR_BUFFER_BIT)
            # culling off: a silhouette is every covered pixel, front or back
            self._draw([(_NoCull(s), m) for s, m in chunk], _bit_color)
            buf = np.frombuffer(GL.glReadPixels(0, 0, w, h, GL.GL_RGBA, GL.GL_UNSIGNED_BYTE), dtype=np.uint8)
            px = buf.reshape(-1, 4)
            px = px[px.any(axis=1)]
            bits = np.unpackbits(px, axis=1, bitorder="little").sum(axis=0, dtype=np.int64)
            counts[start:start + len(chunk)] = bits[: len(chunk)]
        self._end()
        return counts

    def delete(self) -> None:
        GL.glDeleteFramebuffers(1, [self.fbo])
        GL.glDeleteRenderbuffers(2, [self._cb, self._db])
        GL.glDeleteProgram(self.program)


def _bit_color(k: int) -> tuple[float, float, float, float]:
    c = [0.0, 0.0, 0.0, 0.0]
    c[k // 8] = (1 << (k % 8)) / 255.0
    return c[0], c[1], c[2], c[3]


class _NoCull:
    __slots__ = ("vao", "count", "cull")

    def __init__(self, s: Shape):
        self.vao, self.count, self.cull = s.vao, s.count, False
