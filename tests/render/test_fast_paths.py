"""The engine's speed-ups change no byte: pyrender fast paths against stock pyrender, and
the PNG writer against Pillow's decoder."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PIL import Image

from jobs.render.pngenc import FILTER_SUB, FILTER_UP, encode_png

from .conftest import small_scene

FRAMES = {"egl": (0, 1, 2, 3), "osmesa": (0, 1)}  # stock pyrender on OSMesa is slow (see the test)

_RENDER = textwrap.dedent("""
    import json, sys
    import numpy as np
    from jobs.render.renderer import select_gl_platform
    select_gl_platform()
    from jobs.render.library import build_library
    from jobs.render.renderer import SceneRenderer
    from jobs.render.sampling import sample_frame
    from jobs.render.spec import parse_scene
    spec = parse_scene(json.loads(open(sys.argv[1]).read()))
    lib = build_library(spec)
    infos = [g.info for g in lib]
    r = SceneRenderer(spec, lib)
    frames = [sample_frame(spec, infos, 9, int(i)) for i in sys.argv[3].split(",")]
    r.reserve(frames)
    out = []
    for fs in frames:
        r.apply(fs)
        out.append(r.render_color().copy())
    r.close()
    np.save(sys.argv[2], np.stack(out))
    print(json.dumps({"uniform_cache": r.uniform_cache, "fast_paths": r.fast_paths}))
""")


def _render(tmp_path, name: str, plain: bool, platform: str = "egl") -> tuple[np.ndarray, dict]:
    scene = tmp_path / "scene.json"
    data = small_scene()
    data["lights"]["count"] = [2, 3]  # several lights of two kinds: the per-program light uniforms matter
    scene.write_text(json.dumps(data))
    env = {k: v for k, v in os.environ.items() if k != "KMINER_RENDER_PLAIN_PYRENDER"}
    env["PYOPENGL_PLATFORM"] = platform
    if plain:
        env["KMINER_RENDER_PLAIN_PYRENDER"] = "1"
    out = tmp_path / f"{name}.npy"
    p = subprocess.run([sys.executable, "-c", _RENDER, str(scene), str(out), ",".join(map(str, FRAMES[platform]))], env=env, capture_output=True, text=True,
                       timeout=300, cwd=os.getcwd(), check=False)
    assert p.returncode == 0, p.stderr[-2000:]
    return np.load(out), json.loads(p.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("platform", ["egl", "osmesa"])
def test_fast_paths_render_the_bytes_of_stock_pyrender(tmp_path, platform):
    """On OSMesa stock pyrender compiles shaders for every primitive of every frame; the
    fast path compiles them once, and the frames are still the same."""
    stock, s_info = _render(tmp_path, "stock", plain=True, platform=platform)
    fast, f_info = _render(tmp_path, "fast", plain=False, platform=platform)
    assert s_info == {"uniform_cache": False, "fast_paths": False}
    assert f_info == {"uniform_cache": True, "fast_paths": True}
    frames = FRAMES[platform]
    assert stock.shape == (len(frames), 120, 160, 3) and stock.std() > 20
    for k in range(len(frames)):  # frames differ from each other, and each equals stock
        assert np.array_equal(stock[k], fast[k]), f"frame {frames[k]} differs"
    assert not np.array_equal(stock[0], stock[1])


@pytest.mark.parametrize("shape,dtype", [((7, 5), np.uint8), ((6, 9, 3), np.uint8), ((4, 3, 4), np.uint8),
                                         ((5, 8, 2), np.uint8), ((9, 4), np.uint16), ((1, 1), np.uint16)])
@pytest.mark.parametrize("filt", [FILTER_SUB, FILTER_UP])
def test_png_writer_round_trips_through_pillow(shape, dtype, filt):
    rng = np.random.default_rng(sum(shape) + filt)
    a = rng.integers(0, np.iinfo(dtype).max, size=shape, dtype=dtype, endpoint=True)
    a.flat[0], a.flat[-1] = np.iinfo(dtype).max, 0
    data = encode_png(a, filter_type=filt)
    assert data == encode_png(a.copy(), filter_type=filt)  # deterministic
    back = np.asarray(Image.open(io.BytesIO(data)))
    assert back.shape == a.shape and np.array_equal(back.astype(np.int64), a.astype(np.int64))


def test_png_writer_refuses_what_png_cannot_hold():
    for bad in (np.zeros((3, 3), np.float32), np.zeros((3, 3, 3), np.uint16), np.zeros((2, 2, 5), np.uint8), np.zeros(4, np.uint8)):
        with pytest.raises(ValueError):
            encode_png(bad)
    with pytest.raises(ValueError):
        encode_png(np.zeros((2, 2), np.uint8), filter_type=4)
