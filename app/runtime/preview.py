"""The scene editor's preview renderer, kept alive in a child process.

The GUI process never imports pyrender or OpenGL: `PreviewService` starts `kminer
preview-server` (jobs.render.preview.serve) once and talks to it over its stdin/stdout.

Protocol: one JSON request line in (`{"id", "op": "view"|"sample"|"photoreal", "spec"?,
"inputs"?, ...}`; `spec` only when it changed since the last request this child saw), one reply
out: a JSON header line (`{"id", "ok", "error"?, "code"?, "ms", "rebuilt"?, "images": [{"width",
"height", "boxes", "objects", "frame"}], "legend"?, "samples"?, "device"?}`) followed by
width*height*3 raw RGB bytes per image.

Photoreal previews (a small Cycles frame, `photoreal()`) go to a second child of their own,
started on the first such request, so a path-traced frame (about a second) never holds up the
live view. Its error `code` "not_installed" means bpy is missing there.

The newest request wins: at most one request is in flight; a newer view replaces a waiting
view (whose future is cancelled), likewise for samples, so dragging the camera stays live.
A child that dies is restarted (its in-flight request fails with `PreviewError(crashed=True)`);
a bad spec is answered with a one-line error naming the field (`layout.rows: ...`).

Threading: every public method may be called from any thread and returns at once; futures
complete on the service's reader thread (bridge them to the GUI thread yourself). Scene
assets: a spec's user files (meshes, images) live content-addressed (`<sha256>.<ext>`) in
its asset folder; `find_inputs` maps them for the renderer.
"""

from __future__ import annotations

import collections
import json
import logging
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

from common.fsutil import atomic_write_bytes, sha256_file
from jobs.render.spec import SceneError, parse_scene

log = logging.getLogger(__name__)

ASSET_SUFFIXES = {".obj", ".glb", ".gltf", ".stl", ".ply", ".png", ".jpg", ".jpeg"}


class PreviewError(RuntimeError):
    """A preview request failed; the message is one line. `crashed`: the child died on it."""

    def __init__(self, message: str, *, crashed: bool = False, code: str = ""):
        super().__init__(message)
        self.crashed = crashed
        self.code = code  # "not_installed": the photoreal engine (bpy) is missing in the child


@dataclass(frozen=True)
class Orbit:
    """The preview camera around the layout's centre (degrees, metres)."""

    yaw_deg: float = 0.0
    pitch_deg: float = 5.0
    distance_m: float = 1.6

    def moved(self, d_yaw: float = 0.0, d_pitch: float = 0.0, zoom: float = 1.0) -> Orbit:
        return Orbit((self.yaw_deg + d_yaw + 180.0) % 360.0 - 180.0, max(-80.0, min(85.0, self.pitch_deg + d_pitch)),
                     max(0.2, min(20.0, self.distance_m * zoom)))


def default_orbit(spec: dict) -> Orbit:
    """The middle of the spec's camera ranges (what a typical dataset frame sees)."""
    cam = spec.get("camera") or {}

    def mid(name: str, default: float) -> float:
        try:
            lo, hi = cam.get(name, (default, default))
            return (float(lo) + float(hi)) / 2.0
        except (TypeError, ValueError):
            return default

    return Orbit(mid("yaw_deg", 0.0), mid("pitch_deg", 5.0), mid("distance", 1.5)).moved()


@dataclass(frozen=True)
class PreviewImage:
    width: int
    height: int
    rgb: bytes  # width*height*3, rows top to bottom
    frame: int = 0
    boxes: int = 0
    objects: int = 0


@dataclass(frozen=True)
class PreviewResult:
    op: str
    images: tuple[PreviewImage, ...]
    render_ms: float  # time the child spent on the request
    rebuilt: bool = False  # the renderer was rebuilt (new spec, inputs or size)
    legend: tuple[tuple[str, tuple[int, int, int]], ...] = ()  # class name -> overlay colour
    latency_ms: float = 0.0  # request sent -> reply read, this side
    samples: int = 0  # photoreal: Cycles samples per pixel
    device: str = ""  # photoreal: the Cycles device ("Cycles CPU", "Cycles OPTIX", ...)


def validate_spec(spec: dict) -> str | None:
    """None when `spec` is a valid scene, else the one-line error naming the field."""
    try:
        parse_scene(spec)
    except SceneError as e:
        return str(e)
    return None


def asset_dir_for(spec_path: str | os.PathLike[str] | None, scenes_dir: str | os.PathLike[str]) -> Path:
    """Where a spec's user files live: `assets/` beside the spec file (or in `scenes_dir` when unsaved)."""
    return (Path(spec_path).parent if spec_path else Path(scenes_dir)) / "assets"


def find_inputs(spec: dict, asset_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """{sha256: path} of the user files `spec` names that are present in `asset_dir`."""
    try:
        wanted = parse_scene(spec).content_hashes()
    except SceneError:
        return {}
    d = Path(asset_dir)
    out: dict[str, Path] = {}
    if d.is_dir():
        for p in d.iterdir():
            if p.stem in wanted and p.suffix.lower() in ASSET_SUFFIXES:
                out[p.stem] = p
    return out


def import_asset(src: str | os.PathLike[str], asset_dir: str | os.PathLike[str]) -> tuple[str, Path]:
    """Copy a user file into the asset folder as `<sha256><suffix>` (atomic); returns (sha256, path)."""
    src = Path(src)
    suffix = src.suffix.lower()
    if suffix not in ASSET_SUFFIXES:
        raise ValueError(f"{src.name}: not a mesh or image ({', '.join(sorted(ASSET_SUFFIXES))})")
    if not src.is_file():
        raise ValueError(f"{src}: no such file")
    digest = sha256_file(src)
    dest = Path(asset_dir) / f"{digest}{suffix}"
    if not dest.exists():
        dest.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(dest, src.read_bytes())
    return digest, dest


def server_argv() -> list[str]:
    """How to start the preview server: the app's own executable, frozen or not."""
    if getattr(sys, "frozen", False):
        return [sys.executable, "preview-server"]
    return [sys.executable, "-m", "cli", "preview-server"]


@dataclass
class _Request:
    op: str
    body: dict
    spec_text: str
    inputs: dict[str, str]
    future: Future = field(default_factory=Future)


class _Child:
    def __init__(self, argv: list[str], env: dict[str, str] | None):
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env=env, bufsize=0)
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=20)
        self.spec_key: tuple | None = None
        self._drainer = threading.Thread(target=self._drain, name="preview-stderr", daemon=True)
        self._drainer.start()

    def _drain(self) -> None:
        for raw in self.proc.stderr:
            line = raw.decode(errors="replace").rstrip()
            if line:
                self.stderr_tail.append(line)
                log.debug("preview-server: %s", line)

    def why(self) -> str:
        code = self.proc.poll()
        if code is not None:  # let the drainer read the child's last words before they are quoted
            self._drainer.join(timeout=0.5)   # at once unless a grandchild keeps the pipe open
        last = next((ln for ln in reversed(self.stderr_tail) if ln.strip()), "")
        return f"the preview process stopped (exit code {code})" + (f": {last[:300]}" if last else "")


def _read_exact(stream, n: int) -> bytes | None:
    chunks, got = [], 0
    while got < n:
        b = stream.read(min(n - got, 1 << 20))
        if not b:
            return None
        chunks.append(b)
        got += len(b)
    return b"".join(chunks)


class PreviewService:
    """A long-lived preview renderer in a child process (see the module docstring).

    `argv`/`env`: how to start the child (default: `kminer preview-server`, this environment).
    `request_timeout_s`: a view running longer than this kills the child (it is restarted);
    a sample of n frames may take n times as long.
    """

    def __init__(self, *, argv: list[str] | None = None, env: dict[str, str] | None = None,
                 request_timeout_s: float = 120.0, max_restarts: int = 5, restart_window_s: float = 60.0):
        self._argv = argv or server_argv()
        self._env = env
        self._timeout = request_timeout_s
        self._max_restarts, self._window = max_restarts, restart_window_s
        self._cond = threading.Condition()
        self._pending: dict[str, _Request] = {}
        self._in_flight: tuple[_Request, float] | None = None
        self._child: _Child | None = None
        self._last_dead: _Child | None = None  # the child that died last: its exit code and stderr explain a give-up
        self._starts: list[float] = []
        self._closed = False
        self._gave_up: str | None = None
        self._next_id = 0
        self.restarts = 0  # children started after the first
        self._started_once = False
        self._valid_text: str | None = None
        self._sender: threading.Thread | None = None
        self._photo: PreviewService | None = None  # the photoreal child's service, on first use

    # ----------------------------------------------------------------- public
    def start(self) -> PreviewService:
        """Start the child now (it is also started on the first request)."""
        with self._cond:
            if self._sender is None:
                self._sender = threading.Thread(target=self._send_loop, name="preview-send", daemon=True)
                self._sender.start()
            self._cond.notify_all()
        return self

    @property
    def pid(self) -> int | None:
        with self._cond:
            return self._child.proc.pid if self._child is not None and self._child.proc.poll() is None else None

    @property
    def photoreal_pid(self) -> int | None:
        """The photoreal child's pid (None before the first photoreal request or when it is down)."""
        with self._cond:
            photo = self._photo
        return photo.pid if photo is not None else None

    def view(self, spec: dict, orbit: Orbit, *, width: int = 640, height: int = 480, frame: int = 0,
             boxes: bool = False, masks: bool = False, inputs: dict[str, Path] | None = None) -> Future:
        """Frame `frame` of `spec` seen from `orbit`; a Future of PreviewResult (one image).
        Cancelled when a newer view replaces it before it was sent."""
        body = {"op": "view", "camera": {"yaw": orbit.yaw_deg, "pitch": orbit.pitch_deg, "distance": orbit.distance_m},
                "width": int(width), "height": int(height), "frame": int(frame), "boxes": bool(boxes), "masks": bool(masks)}
        return self._submit("view", body, spec, inputs)

    def sample(self, spec: dict, n: int = 8, *, seed: int | None = None, boxes: bool = True, masks: bool = True,
               inputs: dict[str, Path] | None = None) -> Future:
        """`n` random dataset frames of `spec` with boxes and masks drawn; a Future of PreviewResult."""
        seed = int.from_bytes(os.urandom(4), "little") if seed is None else int(seed)
        body = {"op": "sample", "n": int(n), "seed": seed, "boxes": bool(boxes), "masks": bool(masks)}
        return self._submit("sample", body, spec, inputs)

    def photoreal(self, spec: dict, orbit: Orbit, *, width: int = 160, height: int = 120, frame: int = 0,
                  samples: int = 8, inputs: dict[str, Path] | None = None) -> Future:
        """A small Cycles frame of `spec` seen from `orbit` (denoised, `samples` per pixel), from
        a second child; a Future of PreviewResult. A newer request replaces a waiting one;
        `cancel("photoreal")` drops a waiting one (a frame being rendered finishes, unseen)."""
        with self._cond:
            if self._closed:
                fut: Future = Future()
                fut.cancel()
                return fut
            if self._photo is None:
                self._photo = PreviewService(argv=self._argv, env=self._env, request_timeout_s=self._timeout,
                                             max_restarts=self._max_restarts, restart_window_s=self._window)
            photo = self._photo
        body = {"op": "photoreal", "camera": {"yaw": orbit.yaw_deg, "pitch": orbit.pitch_deg, "distance": orbit.distance_m},
                "width": int(width), "height": int(height), "frame": int(frame), "samples": int(samples)}
        return photo._submit("photoreal", body, spec, inputs)

    def stop_photoreal(self) -> None:
        """Let the photoreal child go (bpy holds ~370 MB): a waiting request is cancelled, a frame
        being rendered is dropped; the next `photoreal()` starts a new child. Returns at once
        (the child is told to quit, and waited for, on a thread of its own)."""
        with self._cond:
            photo, self._photo = self._photo, None
        if photo is not None:
            threading.Thread(target=photo.close, name="preview-photoreal-close", daemon=True).start()

    def cancel(self, op: str) -> None:
        """Cancel the waiting (not yet sent) request of kind `op` ("view", "sample", "photoreal")."""
        with self._cond:
            photo = self._photo if op == "photoreal" else None
        if photo is not None:  # this service's photoreal child is served by its own service
            photo.cancel(op)
            return
        with self._cond:
            req = self._pending.pop(op, None)
        if req is not None:
            req.future.cancel()

    def restart(self) -> None:
        """Kill the child and start a fresh one (also clears a 'keeps crashing' state)."""
        with self._cond:
            self._gave_up = None
            self._starts.clear()
            child, photo = self._child, self._photo
        if child is not None:
            child.proc.kill()
        if photo is not None:
            photo.restart()
        self.start()

    def close(self, timeout: float = 5.0) -> None:
        """Stop the child and the threads; waiting futures are cancelled."""
        with self._cond:
            self._closed = True
            for req in self._pending.values():
                req.future.cancel()
            self._pending.clear()
            child, self._child = self._child, None
            photo, self._photo = self._photo, None
            self._cond.notify_all()
        if photo is not None:
            photo.close(timeout)
        if child is not None:
            try:
                child.proc.stdin.write(b'{"op": "quit"}\n')
                child.proc.stdin.close()
                child.proc.wait(timeout)
            except (OSError, ValueError, subprocess.TimeoutExpired):
                child.proc.kill()
                child.proc.wait()
        if self._sender is not None:
            self._sender.join(timeout)

    # ----------------------------------------------------------------- internals
    def _submit(self, op: str, body: dict, spec: dict, inputs) -> Future:
        try:
            spec_text = json.dumps(spec, sort_keys=True)
        except (TypeError, ValueError) as e:
            fut: Future = Future()
            fut.set_exception(PreviewError(f"scene: not JSON data ({e})"))
            return fut
        if spec_text != self._valid_text:
            err = validate_spec(spec)
            if err:
                fut = Future()
                fut.set_exception(PreviewError(err))
                return fut
            self._valid_text = spec_text
        req = _Request(op, body, spec_text, {k: str(v) for k, v in sorted((inputs or {}).items())})
        with self._cond:
            if self._closed:
                req.future.cancel()
                return req.future
            if self._gave_up:
                req.future.set_exception(PreviewError(self._gave_up, crashed=True))
                return req.future
            old = self._pending.pop(op, None)
            if old is not None:
                old.future.cancel()
            self._pending[op] = req
            self._cond.notify_all()
        if self._sender is None:
            self.start()
        return req.future

    def _spawn(self) -> _Child | None:
        now = time.monotonic()
        self._starts = [t for t in self._starts if now - t < self._window]
        if len(self._starts) >= self._max_restarts:
            dead = self._child or self._last_dead
            last = dead.why() if dead is not None else "the preview process keeps stopping"
            self._gave_up = f"preview stopped: {last} ({len(self._starts)} restarts in {self._window:.0f} s)"
            for req in self._pending.values():
                req.future.set_exception(PreviewError(self._gave_up, crashed=True))
            self._pending.clear()
            return None
        if self._started_once:
            self.restarts += 1
        self._started_once = True
        self._starts.append(now)
        try:
            child = _Child(self._argv, self._env)
        except OSError as e:
            self._gave_up = f"cannot start the preview process: {e}"
            for req in self._pending.values():
                req.future.set_exception(PreviewError(self._gave_up))
            self._pending.clear()
            return None
        threading.Thread(target=self._read_loop, args=(child,), name="preview-read", daemon=True).start()
        return child

    def _send_loop(self) -> None:
        while True:
            with self._cond:
                while not self._closed:
                    child = self._child
                    dead = child is None or child.proc.poll() is not None
                    if dead and self._in_flight is None and not self._gave_up:
                        self._child = child = self._spawn()
                    if self._in_flight is not None:
                        req, t0 = self._in_flight
                        limit = self._timeout * (int(req.body.get("n", 1)) if req.op == "sample" else 1)
                        if time.monotonic() - t0 > limit and child is not None:
                            log.warning("preview request %s ran past %.0f s: restarting the preview process", req.op, limit)
                            child.proc.kill()
                        self._cond.wait(1.0)
                        continue
                    if self._pending and child is not None and child.proc.poll() is None:
                        break
                    self._cond.wait(1.0)
                if self._closed:
                    return
                op = next(o for o in ("sample", "view", "photoreal") if o in self._pending)
                req = self._pending.pop(op)
                if not req.future.set_running_or_notify_cancel():
                    continue
                self._next_id += 1
                msg = dict(req.body, id=self._next_id)
                key = (req.spec_text, tuple(req.inputs.items()))
                if child.spec_key != key:
                    msg["spec"] = json.loads(req.spec_text)
                    msg["inputs"] = req.inputs
                    child.spec_key = key
                self._in_flight = (req, time.monotonic())
            try:
                child.proc.stdin.write(json.dumps(msg).encode() + b"\n")
            except (OSError, ValueError):
                child.proc.kill()  # the reader sees EOF and fails the request

    def _read_loop(self, child: _Child) -> None:
        out = child.proc.stdout
        while True:
            line = out.readline()
            head = None
            data = b""
            if line:
                try:
                    head = json.loads(line)
                    sizes = [int(i["width"]) * int(i["height"]) * 3 for i in head.get("images", [])]
                    data = _read_exact(out, sum(sizes)) if sizes else b""
                except (ValueError, KeyError, TypeError):
                    head = None
                if data is None:
                    head = None
            if head is None:  # EOF or garbage: the child is gone (or is killed now)
                child.proc.kill()
                child.proc.wait()
                with self._cond:
                    inflight, self._in_flight = self._in_flight, None
                    if self._child is child:
                        self._child = None
                    self._last_dead = child
                    self._cond.notify_all()
                if inflight is not None:
                    inflight[0].future.set_exception(PreviewError(child.why(), crashed=True))
                return
            with self._cond:
                inflight, self._in_flight = self._in_flight, None
                self._cond.notify_all()
            if inflight is None:
                continue
            req, t0 = inflight
            if not head.get("ok"):
                req.future.set_exception(PreviewError(str(head.get("error", "preview failed")), code=str(head.get("code", ""))))
                continue
            images, off = [], 0
            for meta in head.get("images", []):
                n = int(meta["width"]) * int(meta["height"]) * 3
                images.append(PreviewImage(int(meta["width"]), int(meta["height"]), data[off:off + n],
                                           int(meta.get("frame", 0)), int(meta.get("boxes", 0)), int(meta.get("objects", 0))))
                off += n
            legend = tuple((str(n), tuple(int(c) for c in rgb)) for n, rgb in head.get("legend", []))
            req.future.set_result(PreviewResult(req.op, tuple(images), float(head.get("ms", 0.0)), bool(head.get("rebuilt")),
                                                legend, (time.monotonic() - t0) * 1000.0,  # type: ignore[arg-type]
                                                int(head.get("samples", 0)), str(head.get("device", ""))))

