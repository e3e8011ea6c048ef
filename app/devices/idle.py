"""How long the user has been away from keyboard and mouse, or None when we cannot tell.

- X11 (DISPLAY set, not a Wayland session): the XScreenSaver extension's idle time
  (libXss `XScreenSaverQueryInfo`, what `xprintidle` prints), through ctypes.
- Windows: `GetLastInputInfo` (user32), through ctypes.
- Anything else (Wayland, where XWayland only sees X clients' input; no display; libXss
  missing; the X server went away): None, meaning "unknown". Auto mode then stays idle:
  we never guess.

`IdleDetector.idle_seconds()` is cheap (one X round trip, well under a millisecond) and
thread-safe (one lock around the X connection); call it ~1/s from a worker thread.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys
import threading
from typing import Callable, Mapping

log = logging.getLogger(__name__)

__all__ = ["IdleDetector", "idle_backend_name"]


class _XScreenSaverInfo(ctypes.Structure):
    _fields_ = [
        ("window", ctypes.c_ulong),
        ("state", ctypes.c_int),
        ("kind", ctypes.c_int),
        ("til_or_since", ctypes.c_ulong),
        ("idle", ctypes.c_ulong),  # milliseconds since the last input event
        ("event_mask", ctypes.c_ulong),
    ]


_XIOExitHandler = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_void_p)
_XIOErrorHandler = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p)

# Displays whose server went away. The callbacks live as long as the process: Xlib keeps
# pointers to them, and the IO error handler is process-wide.
_DEAD_DISPLAYS: set[int] = set()


def _mark_dead(dpy: int) -> None:
    _DEAD_DISPLAYS.add(int(dpy or 0))


_IO_EXIT_CB = _XIOExitHandler(lambda dpy, data: _mark_dead(dpy))
_IO_ERROR_CB = _XIOErrorHandler(lambda dpy: (_mark_dead(dpy), 0)[1])


class _X11:
    """One connection to the X server named by `display`; `idle_ms()` or None once broken."""

    def __init__(self, display: str):
        self.display_name = display
        self.dpy: int | None = None
        x11_path = ctypes.util.find_library("X11") or "libX11.so.6"
        xss_path = ctypes.util.find_library("Xss") or "libXss.so.1"
        self.x11 = ctypes.CDLL(x11_path)
        self.xss = ctypes.CDLL(xss_path)
        x11, xss = self.x11, self.xss
        x11.XOpenDisplay.argtypes = [ctypes.c_char_p]
        x11.XOpenDisplay.restype = ctypes.c_void_p
        x11.XDefaultRootWindow.argtypes = [ctypes.c_void_p]
        x11.XDefaultRootWindow.restype = ctypes.c_ulong
        x11.XCloseDisplay.argtypes = [ctypes.c_void_p]
        x11.XFree.argtypes = [ctypes.c_void_p]
        xss.XScreenSaverQueryExtension.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_int),
                                                   ctypes.POINTER(ctypes.c_int)]
        xss.XScreenSaverAllocInfo.restype = ctypes.POINTER(_XScreenSaverInfo)
        xss.XScreenSaverQueryInfo.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.POINTER(_XScreenSaverInfo)]
        # Xlib's default reaction to a lost server is exit(); libX11 >= 1.8 lets us return
        # instead (XSetIOErrorExitHandler).
        self.dpy = x11.XOpenDisplay(display.encode())
        if not self.dpy:
            raise OSError(f"cannot open X display {display!r}")
        if hasattr(x11, "XSetIOErrorExitHandler"):
            x11.XSetIOErrorExitHandler.argtypes = [ctypes.c_void_p, _XIOExitHandler, ctypes.c_void_p]
            x11.XSetIOErrorExitHandler(self.dpy, _IO_EXIT_CB, None)
            self.survives_server_loss = True
            # The process-wide IO error handler must return too (the default one prints and,
            # in some libX11 versions, exits); ours only marks the connection dead.
            x11.XSetIOErrorHandler.argtypes = [_XIOErrorHandler]
            x11.XSetIOErrorHandler.restype = ctypes.c_void_p
            x11.XSetIOErrorHandler(_IO_ERROR_CB)
        else:
            self.survives_server_loss = False
        ev, err = ctypes.c_int(), ctypes.c_int()
        if not xss.XScreenSaverQueryExtension(self.dpy, ctypes.byref(ev), ctypes.byref(err)):
            x11.XCloseDisplay(self.dpy)
            self.dpy = None
            raise OSError(f"X display {display!r} has no MIT-SCREEN-SAVER extension")
        self.root = x11.XDefaultRootWindow(self.dpy)
        self.info = xss.XScreenSaverAllocInfo()

    @property
    def dead(self) -> bool:
        return bool(self.dpy) and int(self.dpy) in _DEAD_DISPLAYS

    def idle_ms(self) -> int | None:
        if not self.dpy or self.dead:
            return None
        ok = self.xss.XScreenSaverQueryInfo(self.dpy, self.root, self.info)
        if self.dead or not ok:
            return None
        return int(self.info.contents.idle)

    def close(self) -> None:
        if self.dpy and not self.dead:
            if self.info:
                self.x11.XFree(self.info)
            self.x11.XCloseDisplay(self.dpy)
        _DEAD_DISPLAYS.discard(int(self.dpy or 0))
        self.dpy = None


def _windows_idle_seconds() -> float | None:
    class LASTINPUTINFO(ctypes.Structure):
        _fields_ = [("cbSize", ctypes.c_uint), ("dwTime", ctypes.c_uint)]

    user32 = ctypes.windll.user32  # type: ignore[attr-defined]
    kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
    lii = LASTINPUTINFO()
    lii.cbSize = ctypes.sizeof(LASTINPUTINFO)
    if not user32.GetLastInputInfo(ctypes.byref(lii)):
        return None
    kernel32.GetTickCount.restype = ctypes.c_uint
    # Both are 32-bit millisecond tick counts: the difference is right across the 49.7-day wrap.
    return ((kernel32.GetTickCount() - lii.dwTime) & 0xFFFFFFFF) / 1000.0


def idle_backend_name(env: Mapping[str, str] | None = None, platform: str | None = None) -> str | None:
    """Which backend applies here: "x11", "windows", or None (unknown: Wayland, no display)."""
    env = os.environ if env is None else env
    platform = sys.platform if platform is None else platform
    if platform == "win32":
        return "windows"
    if env.get("WAYLAND_DISPLAY") or env.get("XDG_SESSION_TYPE", "").lower() == "wayland":
        return None  # XWayland's idle time ignores native Wayland clients' input: can't tell
    if env.get("DISPLAY"):
        return "x11"
    return None


class IdleDetector:
    """Seconds since the last keyboard/mouse input, or None when unknown. Thread-safe.

    Use as the DeviceService's `idle` callable: `IdleDetector().idle_seconds`.
    """

    def __init__(self, env: Mapping[str, str] | None = None, platform: str | None = None):
        env = dict(os.environ if env is None else env)
        self.backend = idle_backend_name(env, platform)
        self._display = env.get("DISPLAY", "")
        self._lock = threading.Lock()
        self._x11: _X11 | None = None
        self._failed = False
        self.reason: str | None = None if self.backend else "no X11 or Windows session (Wayland or no display)"

    def idle_seconds(self) -> float | None:
        """Seconds since the last input, None when unknown. Never raises."""
        if self.backend == "windows":
            try:
                return _windows_idle_seconds()
            except (OSError, AttributeError) as e:
                self.reason = f"GetLastInputInfo failed: {e}"
                return None
        if self.backend != "x11":
            return None
        with self._lock:
            if self._failed:
                return None
            if self._x11 is None:
                try:
                    self._x11 = _X11(self._display)
                except (OSError, AttributeError) as e:
                    self._failed = True
                    self.reason = f"X11 idle time unavailable: {e}"
                    log.info("%s", self.reason)
                    return None
            ms = self._x11.idle_ms()
            if ms is None:
                self._failed = True
                self.reason = "lost the connection to the X server"
                log.info("%s", self.reason)
                return None
            return ms / 1000.0

    def close(self) -> None:
        with self._lock:
            if self._x11 is not None:
                self._x11.close()
                self._x11 = None


def default_idle() -> Callable[[], float | None]:
    """The idle callable for this machine's session."""
    return IdleDetector().idle_seconds
