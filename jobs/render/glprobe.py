"""Can this process get an offscreen OpenGL context? EGL and OSMesa probes in plain ctypes.

PyOpenGL picks its platform once, from `PYOPENGL_PLATFORM`, when `OpenGL` is first
imported; so the choice between EGL and OSMesa has to be made before that, without
PyOpenGL. These probes do what pyrender's platforms do (EGL: first device's platform
display, a core 4.1 context made current without a surface; OSMesa: a core 3.3 context on
a small buffer) and return the GL_RENDERER string, or raise `GLProbeError` saying which
step failed. Only the standard library is imported, so the file also runs on its own in a
child process (`python glprobe.py egl|osmesa`: prints the renderer, exit 1 with the
reason on stderr), which keeps a driver that crashes or hangs out of the caller.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

EGL_PLATFORM_DEVICE_EXT = 0x313F
_EGL = {"SURFACE_TYPE": 0x3033, "PBUFFER_BIT": 0x0001, "RED_SIZE": 0x3024, "GREEN_SIZE": 0x3023,
        "BLUE_SIZE": 0x3022, "DEPTH_SIZE": 0x3025, "COLOR_BUFFER_TYPE": 0x303F, "RGB_BUFFER": 0x308E,
        "RENDERABLE_TYPE": 0x3040, "OPENGL_BIT": 0x0008, "CONFORMANT": 0x3042, "NONE": 0x3038,
        "OPENGL_API": 0x30A2, "CONTEXT_MAJOR_VERSION": 0x3098, "CONTEXT_MINOR_VERSION": 0x30FB,
        "CONTEXT_OPENGL_PROFILE_MASK": 0x30FD, "CONTEXT_OPENGL_CORE_PROFILE_BIT": 0x0001}
GL_RENDERER = 0x1F01
GL_UNSIGNED_BYTE = 0x1401
OSMESA = {"FORMAT": 0x22, "RGBA": 0x1908, "DEPTH_BITS": 0x30, "PROFILE": 0x33, "CORE_PROFILE": 0x34,
          "CONTEXT_MAJOR_VERSION": 0x36, "CONTEXT_MINOR_VERSION": 0x37}


class GLProbeError(RuntimeError):
    """No context on this platform; the message names the failing step."""


def _lib(name: str, soname: str) -> ctypes.CDLL:
    try:
        return ctypes.CDLL(soname)
    except OSError:
        found = ctypes.util.find_library(name)
        if not found:
            raise GLProbeError(f"lib{name} not found") from None
        return ctypes.CDLL(found)


def _ints(values: list[int]):
    return (ctypes.c_int * len(values))(*values)


def probe_egl() -> str:
    """GL_RENDERER of an EGL context made as pyrender makes it; raises GLProbeError."""
    egl = _lib("EGL", "libEGL.so.1")
    vp, e = ctypes.c_void_p, _EGL
    egl.eglGetProcAddress.restype = vp
    egl.eglGetProcAddress.argtypes = [ctypes.c_char_p]
    egl.eglGetDisplay.restype = vp
    egl.eglGetDisplay.argtypes = [vp]
    egl.eglInitialize.argtypes = [vp, ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_int)]
    egl.eglChooseConfig.argtypes = [vp, ctypes.POINTER(ctypes.c_int), ctypes.POINTER(vp), ctypes.c_int, ctypes.POINTER(ctypes.c_int)]
    egl.eglBindAPI.argtypes = [ctypes.c_uint]
    egl.eglCreateContext.restype = vp
    egl.eglCreateContext.argtypes = [vp, vp, vp, ctypes.POINTER(ctypes.c_int)]
    egl.eglMakeCurrent.argtypes = [vp, vp, vp, vp]
    egl.eglDestroyContext.argtypes = [vp, vp]
    egl.eglTerminate.argtypes = [vp]
    egl.eglGetError.restype = ctypes.c_int

    def proc(name: str, restype, *argtypes):
        addr = egl.eglGetProcAddress(name.encode())
        return ctypes.CFUNCTYPE(restype, *argtypes)(addr) if addr else None

    query = proc("eglQueryDevicesEXT", ctypes.c_uint, ctypes.c_int, ctypes.POINTER(vp), ctypes.POINTER(ctypes.c_int))
    platform_display = proc("eglGetPlatformDisplayEXT", vp, ctypes.c_uint, vp, ctypes.POINTER(ctypes.c_int))
    if query is not None:
        n = ctypes.c_int(0)
        if not query(0, None, ctypes.byref(n)) or n.value < 1:
            raise GLProbeError("no EGL device (eglQueryDevicesEXT found none)")
        devices = (vp * n.value)()
        query(n.value, devices, ctypes.byref(n))
        if platform_display is None:
            raise GLProbeError("eglGetPlatformDisplayEXT missing")
        dpy = platform_display(EGL_PLATFORM_DEVICE_EXT, devices[0], None)
    else:
        dpy = egl.eglGetDisplay(None)
    if not dpy:
        raise GLProbeError(f"no EGL display (error 0x{egl.eglGetError():x})")
    major, minor = ctypes.c_int(), ctypes.c_int()
    if not egl.eglInitialize(dpy, ctypes.byref(major), ctypes.byref(minor)):
        raise GLProbeError(f"eglInitialize failed (error 0x{egl.eglGetError():x})")
    try:
        cfg, ncfg = vp(), ctypes.c_int(0)
        attrs = _ints([e["SURFACE_TYPE"], e["PBUFFER_BIT"], e["BLUE_SIZE"], 8, e["RED_SIZE"], 8, e["GREEN_SIZE"], 8,
                       e["DEPTH_SIZE"], 24, e["COLOR_BUFFER_TYPE"], e["RGB_BUFFER"], e["RENDERABLE_TYPE"], e["OPENGL_BIT"],
                       e["CONFORMANT"], e["OPENGL_BIT"], e["NONE"]])
        if not egl.eglChooseConfig(dpy, attrs, ctypes.byref(cfg), 1, ctypes.byref(ncfg)) or ncfg.value < 1:
            raise GLProbeError("no EGL config with RGB8 + depth24 + desktop OpenGL")
        if not egl.eglBindAPI(e["OPENGL_API"]):
            raise GLProbeError("eglBindAPI(OpenGL) failed")
        ctx = egl.eglCreateContext(dpy, cfg, None, _ints([e["CONTEXT_MAJOR_VERSION"], 4, e["CONTEXT_MINOR_VERSION"], 1,
                                                          e["CONTEXT_OPENGL_PROFILE_MASK"],
                                                          e["CONTEXT_OPENGL_CORE_PROFILE_BIT"], e["NONE"]]))
        if not ctx:
            raise GLProbeError(f"no OpenGL 4.1 core context (error 0x{egl.eglGetError():x})")
        try:
            if not egl.eglMakeCurrent(dpy, None, None, ctx):
                raise GLProbeError(f"eglMakeCurrent failed (error 0x{egl.eglGetError():x})")
            get_string = proc("glGetString", ctypes.c_char_p, ctypes.c_uint)
            name = (get_string(GL_RENDERER) if get_string else None) or b"unknown"
            egl.eglMakeCurrent(dpy, None, None, None)
            return name.decode(errors="replace")
        finally:
            egl.eglDestroyContext(dpy, ctx)
    finally:
        egl.eglTerminate(dpy)


def probe_osmesa() -> str:
    """GL_RENDERER of an OSMesa core 3.3 context on an 8x8 buffer; raises GLProbeError."""
    lib = _lib("OSMesa", "libOSMesa.so.8")
    vp, o = ctypes.c_void_p, OSMESA
    lib.OSMesaCreateContextAttribs.restype = vp
    lib.OSMesaCreateContextAttribs.argtypes = [ctypes.POINTER(ctypes.c_int), vp]
    lib.OSMesaMakeCurrent.argtypes = [vp, vp, ctypes.c_uint, ctypes.c_int, ctypes.c_int]
    lib.OSMesaDestroyContext.argtypes = [vp]
    lib.OSMesaGetProcAddress.restype = vp
    lib.OSMesaGetProcAddress.argtypes = [ctypes.c_char_p]
    ctx = lib.OSMesaCreateContextAttribs(_ints([o["FORMAT"], o["RGBA"], o["DEPTH_BITS"], 24, o["PROFILE"], o["CORE_PROFILE"],
                                                o["CONTEXT_MAJOR_VERSION"], 3, o["CONTEXT_MINOR_VERSION"], 3, 0]), None)
    if not ctx:
        raise GLProbeError("OSMesaCreateContextAttribs failed (no OpenGL 3.3 core)")
    try:
        buf = ctypes.create_string_buffer(8 * 8 * 4)
        if not lib.OSMesaMakeCurrent(ctx, ctypes.cast(buf, vp), GL_UNSIGNED_BYTE, 8, 8):
            raise GLProbeError("OSMesaMakeCurrent failed")
        addr = lib.OSMesaGetProcAddress(b"glGetString")
        name = ctypes.CFUNCTYPE(ctypes.c_char_p, ctypes.c_uint)(addr)(GL_RENDERER) if addr else None
        return (name or b"unknown").decode(errors="replace")
    finally:
        lib.OSMesaDestroyContext(ctx)


PROBES = {"egl": probe_egl, "osmesa": probe_osmesa}


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in PROBES:
        sys.stderr.write("usage: glprobe.py egl|osmesa\n")
        return 2
    os.environ.pop("DISPLAY", None)  # as pyrender does: an X display must not steer EGL
    try:
        sys.stdout.write(PROBES[argv[0]]() + "\n")
    except (GLProbeError, OSError, AttributeError) as e:  # AttributeError: a library without the entry point
        sys.stderr.write(f"{e}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
