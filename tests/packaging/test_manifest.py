"""The bundle's contents as packaging/bundle_manifest.py and packaging/kminer.spec declare them."""

from __future__ import annotations

import ast
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_every_resource_file_goes_into_the_bundle_at_its_source_path(manifest):
    pairs = manifest.data_files(ROOT)
    shipped = {(Path(src).relative_to(ROOT).parent.as_posix(), Path(src).name) for src, _ in pairs}
    for src, dest in pairs:
        assert Path(src).relative_to(ROOT).parent.as_posix() == dest
    on_disk = {(p.relative_to(ROOT).parent.as_posix(), p.name) for p in (ROOT / "resources").rglob("*")
               if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}
    assert on_disk, "resources/ is empty"
    assert on_disk <= shipped
    assert ("resources/icons", "kminer.svg") in shipped
    assert ("resources/schemas", "job.schema.json") in shipped


def test_contract_artifacts_ship_and_test_contracts_stay_out(manifest):
    from wallet.artifacts import CONTRACT_NAMES

    dests = {Path(src).name: dest for src, dest in manifest.data_files(ROOT)}
    for name in CONTRACT_NAMES:
        assert dests[f"{name}.json"] == "wallet/artifacts"
    assert "HostileToken.json" not in dests


def test_caches_are_never_shipped(manifest, tmp_path):
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "__init__.py").write_text('__version__ = "9.8.7"\n')
    res = tmp_path / "resources" / "scenes"
    (res / "__pycache__").mkdir(parents=True)
    (res / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"\0")
    (res / "shelf.json").write_text("{}")
    names = [Path(s).name for s, _ in manifest.data_files(tmp_path)]
    assert names == ["shelf.json"]
    assert manifest.app_version(tmp_path) == "9.8.7"


def test_version_is_the_packages_version(manifest):
    import app

    assert manifest.app_version() == app.__version__


def test_modules_loaded_by_name_are_inside_collected_packages(manifest):
    """Engines and CLI commands are imported from strings; collect_submodules of our packages
    must reach each of them, or the frozen worker would fail on that job kind."""
    from cli.main import COMMAND_MODULES
    from jobs.engine import ENGINES

    names = [v.split(":")[0] for v in ENGINES.values()] + [f"cli.commands.{m}" for m in COMMAND_MODULES]
    for mod in names:
        assert mod.split(".")[0] in manifest.OUR_PACKAGES, mod
        assert importlib.util.find_spec(mod) is not None, mod


def test_gl_platform_modules_named_in_hidden_imports_exist(manifest):
    for plat in ("linux", "win32"):
        for mod in manifest.gl_hidden_imports(plat):
            top, *rest = mod.split(".")
            spec = importlib.util.find_spec(top)
            assert spec is not None and spec.submodule_search_locations, top
            base = Path(list(spec.submodule_search_locations)[0]).joinpath(*rest)
            assert base.with_suffix(".py").is_file() or (base / "__init__.py").is_file(), mod
    assert "OpenGL.platform.egl" in manifest.gl_hidden_imports("linux")
    assert "OpenGL.platform.osmesa" in manifest.gl_hidden_imports("linux")
    assert "pyrender.platforms.egl" in manifest.gl_hidden_imports("linux")


def test_excludes_never_drop_what_the_app_runs_on(manifest):
    ex = set(manifest.excludes())
    needed = {"torch", "pyrender", "OpenGL", "trimesh", "PySide6", "PySide6.QtWidgets", "PySide6.QtSvg", "numpy",
              "web3", "safetensors", "pycocotools", "qasync", "scipy", "segno", "PySide6.QtCharts",
              "PySide6.QtOpenGL", "PySide6.QtOpenGLWidgets", *manifest.OUR_PACKAGES}
    assert not (ex & needed)
    assert {"tkinter", "torchvision", "pytest", "bpy"} <= ex  # bpy: the optional photoreal add-on


def test_buyer_stdlib_names_are_standard_library(manifest):
    assert set(manifest.BUYER_STDLIB) <= set(sys.stdlib_module_names)


def test_torch_test_files_are_dropped_and_its_runtime_kept(manifest):
    for dest in ("torch/test/test_api", "torch/bin/protoc", "torch/bin/test_jit", "torch/bin/TCPStoreTest", "torch\\test\\x.exe", "torch/include/c10/x.h",
                 "torch/lib/libtorchbind_test.so"):
        assert not manifest.keep_in_bundle(dest), dest
    for dest in ("torch/bin/torch_shm_manager", "torch/lib/libtorch_cpu.so", "torch/lib/libc10.so", "torch/_C.cpython-311-x86_64-linux-gnu.so",
                 "resources/icons/kminer.svg", "wallet/artifacts/NTK.json"):
        assert manifest.keep_in_bundle(dest), dest


def test_spec_uses_the_manifest_and_builds_one_folder():
    text = (ROOT / "packaging" / "kminer.spec").read_text()
    tree = ast.parse(text)  # valid Python
    calls = {n.func.id for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    assert {"Analysis", "PYZ", "EXE", "COLLECT"} <= calls  # COLLECT = one-folder
    for needle in ("M.data_files(ROOT)", "M.excludes()", "M.gl_hidden_imports(", "M.METADATA_RECURSIVE",
                   "M.keep_in_bundle", "collect_submodules(pkg)", "M.THIRD_PARTY_SUBMODULES", "kminer_entry.py", "M.app_version(ROOT)"):
        assert needle in text, needle


def test_versions_our_code_reads_ship_their_metadata(manifest, monkeypatch, tmp_path):
    """Every distribution whose version the renderer, the render card and the About dialog
    read must have its metadata in the bundle: a missing PyOpenGL version disables the OSMesa
    fallback, a missing pyrender/pillow version makes a bundle's render card differ from a
    source install's (so verification drops from exact to tolerant)."""
    import importlib.metadata as md

    from app.about import about_info
    from app.paths import Paths
    from jobs.render import dataset, renderer

    asked: set[str] = set()
    real = md.version

    def spy(name):
        asked.add(name)
        return real(name)

    monkeypatch.setattr(md, "version", spy)
    dataset.software_versions()
    renderer._pyopengl_version()
    about_info(Paths(config_dir=tmp_path, data_dir=tmp_path, log_dir=tmp_path, cache_dir=tmp_path))
    shipped = {n.lower() for n in manifest.METADATA_PLAIN + manifest.METADATA_RECURSIVE}
    assert {"pyopengl", "pyrender", "pillow"} <= {n.lower() for n in asked}
    assert {n.lower() for n in asked} <= shipped
    spec = (ROOT / "packaging" / "kminer.spec").read_text()
    assert "M.METADATA_PLAIN" in spec


def test_qt_virtual_keyboard_and_quick_are_dropped_and_the_widgets_stack_kept(manifest):
    for dest in ("PySide6/Qt/plugins/platforminputcontexts/libqtvirtualkeyboardplugin.so",
                 "PySide6/Qt/lib/libQt6Quick.so.6", "PySide6/Qt/lib/libQt6Qml.so.6", "PySide6/Qt/lib/libQt6QmlModels.so.6",
                 "PySide6/Qt/lib/libQt6VirtualKeyboard.so.6"):
        assert not manifest.keep_in_bundle(dest), dest
    for dest in ("PySide6/Qt/lib/libQt6Charts.so.6", "PySide6/Qt/lib/libQt6OpenGLWidgets.so.6", "PySide6/QtCharts.abi3.so",
                 "PySide6/Qt/plugins/platforminputcontexts/libcomposeplatforminputcontextplugin.so",
                 "PySide6/Qt/plugins/platforms/libqxcb.so", "PySide6/Qt/lib/libQt6Widgets.so.6"):
        assert manifest.keep_in_bundle(dest), dest


needs_binutils = pytest.mark.skipif(shutil.which("strip") is None or shutil.which("readelf") is None,
                                    reason="needs binutils (strip, readelf)")


@needs_binutils
def test_strip_bundle_strips_binaries_but_leaves_auditwheels_patched_libraries_as_shipped(manifest, tmp_path):
    """PyInstaller's strip broke scipy's vendored openblas in the bundle ("ELF load command
    address/offset not properly aligned"): files under *.libs/ and those whose RUNPATH points
    there stay byte for byte; other ELF files lose their symbols; other files are not touched."""
    import scipy.linalg

    site = Path(scipy.linalg.__file__).parents[2]
    fblas = next((site / "scipy" / "linalg").glob("_fblas*.so"))
    openblas = next((site / "scipy.libs").glob("libscipy_openblas*.so"))
    plain = next(site.glob("cytoolz/itertoolz*.so"))
    b = tmp_path / "kminer"
    files = {"_internal/scipy.libs/" + openblas.name: openblas, "_internal/scipy/linalg/" + fblas.name: fblas,
             "_internal/cytoolz/" + plain.name: plain}
    for rel, src in files.items():
        (b / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, b / rel)
    (b / "_internal" / "data.txt").write_text("not an ELF file\n")
    assert manifest.strip_reason(b / f"_internal/scipy.libs/{openblas.name}", b) == "vendored by auditwheel (patchelf)"
    assert manifest.strip_reason(b / f"_internal/scipy/linalg/{fblas.name}", b) == "RUNPATH rewritten by auditwheel (patchelf)"
    assert manifest.strip_reason(b / f"_internal/cytoolz/{plain.name}", b) is None
    (b / "_internal/nvidia/cublas/lib").mkdir(parents=True)
    shutil.copy2(plain, b / "_internal/nvidia/cublas/lib/libx.so")
    assert "CUDA libraries" in manifest.strip_reason(b / "_internal/nvidia/cublas/lib/libx.so", b)
    (b / "_internal/nvidia/cublas/lib/libx.so").unlink()
    got = manifest.strip_bundle(b)
    assert got["stripped"] == 1 and got["kept"] == 2 and got["saved_bytes"] > 0
    for rel, src in files.items():
        same = (b / rel).read_bytes() == src.read_bytes()
        assert same == ("cytoolz" not in rel), rel
    assert (b / "_internal" / "data.txt").read_text() == "not an ELF file\n"


def test_system_libraries_come_from_the_system_and_vendored_copies_stay(manifest):
    """The bundle's own libstdc++ (the build root's GCC 10) broke Mesa's EGL driver on newer
    systems (it needs GLIBCXX_3.4.29): such libraries are left to the system, and each comes
    from a package the .deb depends on."""
    for name in ("libstdc++.so.6", "libgcc_s.so.1", "libexpat.so.1", "libz.so.1", "libX11.so.6", "libxcb.so.1",
                 "libxcb-xkb.so.1", "libfontconfig.so.1", "libglib-2.0.so.0"):
        assert manifest.is_system_lib(name), name
    for dest in ("libpython3.11.so.1.0", "libssl.so.1.1", "libcrypto.so.1.1", "libffi.so.7", "libsqlite3.so.0",
                 "pillow.libs/libxcb-2ec1a5a6.so.1.1.0", "PIL/libz.so.1", "libQt6Core.so.6", "libseccomp.so.2"):
        assert not manifest.is_system_lib(dest), dest
    deps = subprocess.run(["bash", str(ROOT / "packaging" / "debian-deps.sh"), "list-runtime"], capture_output=True,
                          text=True, check=True).stdout.split()
    assert {"libstdc++6", "libgcc-s1", "libexpat1", "zlib1g", "libx11-6", "libxcb1", "libfontconfig1",
            "libglib2.0-0", "libfreetype6"} <= set(deps)
