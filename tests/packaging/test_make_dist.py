"""The .deb and .tar.gz builder (packaging/linux/make_dist.py), on a small stand-in bundle."""

from __future__ import annotations

import configparser
import io
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

needs_dpkg = pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb (Debian)")


def _fake_bundle(root: Path) -> Path:
    b = root / "kminer"
    (b / "_internal" / "resources").mkdir(parents=True)
    (b / "kminer").write_text("#!/bin/sh\necho kminer 0.0\n")
    (b / "kminer").chmod(0o755)
    (b / "_internal" / "resources" / "data.json").write_text("{}\n")
    return b


def _paragraph(text: str) -> dict[str, str]:
    """Parse one deb-control paragraph strictly: `Key: value`, continuation lines start with a space."""
    fields: dict[str, str] = {}
    key = None
    for line in text.rstrip("\n").split("\n"):
        assert line, "a blank line would end the paragraph"
        if line[0] == " ":
            assert key is not None
            fields[key] += "\n" + line
            continue
        m = re.fullmatch(r"([A-Za-z][A-Za-z0-9-]*): (\S.*)", line)
        assert m, f"bad control line {line!r}"
        key = m.group(1)
        assert key not in fields, f"{key} twice"
        fields[key] = m.group(2)
    return fields


def test_depends_come_from_debian_deps_runtime_list(make_dist):
    runtime = make_dist.runtime_deps()
    assert "libegl1" in runtime and "bubblewrap" in runtime
    dep, rec = make_dist.depends_line(runtime, "2.36")
    names = [d.split(" ")[0] for d in dep.split(", ")]
    assert names[0] == "libc6" and "(>= 2.36)" in dep
    assert set(names[1:]) == set(runtime) - {"bubblewrap"}
    assert rec == "bubblewrap"


def test_control_file_is_a_well_formed_paragraph(make_dist):
    dep, rec = make_dist.depends_line(make_dist.runtime_deps(), make_dist.libc_version())
    f = _paragraph(make_dist.control_text("0.1.0", "amd64", 1234, dep, rec))
    for k in ("Package", "Version", "Architecture", "Maintainer", "Installed-Size", "Depends", "Description"):
        assert k in f, k
    assert f["Package"] == "knowledge-miner" and f["Installed-Size"] == "1234"
    assert f["Recommends"] == "bubblewrap"
    assert all(re.fullmatch(r"[a-z0-9][a-z0-9+.-]+( \(>= [0-9.]+\))?", d) for d in f["Depends"].split(", "))


def test_desktop_entry_launches_kminer_with_its_icon(make_dist):
    cp = configparser.ConfigParser(interpolation=None)
    cp.optionxform = str
    cp.read_string(make_dist.DESKTOP_ENTRY)
    e = cp["Desktop Entry"]
    # the installed binary by its full path, not whatever `kminer` comes first on PATH
    assert (e["Type"], e["Exec"], e["Icon"], e["Terminal"]) == ("Application", "/usr/bin/kminer", "kminer", "false")
    assert e["Categories"].endswith(";")


@needs_dpkg
def test_deb_installs_under_usr_lib_with_link_desktop_entry_and_icon(make_dist, tmp_path):
    bundle = _fake_bundle(tmp_path)
    stage = make_dist.stage_deb(bundle, tmp_path / "stage", "0.1.0", "amd64", make_dist.runtime_deps(), "2.36")
    deb = make_dist.build_deb(stage, tmp_path / "t.deb", compress="gzip")
    info = subprocess.run(["dpkg-deb", "--field", str(deb)], capture_output=True, text=True, check=True).stdout
    f = _paragraph(info)
    assert f["Package"] == "knowledge-miner" and "libegl1" in f["Depends"] and f["Recommends"] == "bubblewrap"
    listing = subprocess.run(["dpkg-deb", "--contents", str(deb)], capture_output=True, text=True, check=True).stdout
    assert re.search(r"^-rwxr-xr-x root/root .* \./usr/lib/knowledge-miner/kminer$", listing, re.M)
    assert re.search(r"\./usr/bin/kminer -> /usr/lib/knowledge-miner/kminer$", listing, re.M)
    assert "./usr/share/applications/kminer.desktop" in listing
    assert "./usr/share/icons/hicolor/scalable/apps/kminer.svg" in listing
    assert "./usr/lib/knowledge-miner/_internal/resources/data.json" in listing
    # Nothing in the package may reach into user folders: removal must leave wallets alone;
    # and no folder but its own and the base system's (no ./opt/, which dpkg warned about)
    paths = re.findall(r" \./(\S*)", listing)
    assert all(p.split("/")[0] in ("usr", "") for p in paths), paths
    dirs = {p.rstrip("/") for p in paths if p.endswith("/")}
    assert dirs - {""} <= {"usr", "usr/bin", "usr/lib", "usr/share", "usr/share/applications", "usr/share/icons",
                           "usr/share/icons/hicolor", "usr/share/icons/hicolor/scalable",
                           "usr/share/icons/hicolor/scalable/apps", "usr/share/doc", "usr/share/doc/knowledge-miner"} \
        | {d for d in dirs if d.startswith("usr/lib/knowledge-miner")}, dirs
    ctl = subprocess.run(["dpkg-deb", "--ctrl-tarfile", str(deb)], capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(ctl)) as t:
        postrm = t.extractfile("./postrm").read().decode()
        prerm = t.extractfile("./prerm").read().decode()
    assert "rm " not in postrm and "home" not in postrm.split("# ", 1)[0]
    # the prerm takes only the optional photoreal engine (not dpkg's file) and only on remove
    code = [ln for ln in prerm.splitlines() if "rm " in ln]
    assert code == ["  remove) rm -rf /usr/lib/knowledge-miner/photoreal ;;"], prerm


def test_tarball_has_one_top_folder_owned_by_root(make_dist, tmp_path):
    bundle = _fake_bundle(tmp_path)
    out = make_dist.build_tar(bundle, tmp_path / "k.tar.gz", "0.1.0")
    with tarfile.open(out) as t:
        members = t.getmembers()
    names = {m.name for m in members}
    assert {"knowledge-miner-0.1.0/kminer", "knowledge-miner-0.1.0/install-desktop.sh",
            "knowledge-miner-0.1.0/uninstall.sh", "knowledge-miner-0.1.0/share/kminer.svg"} <= names
    assert not any(n.endswith(".desktop") for n in names)  # install-desktop.sh writes it with the real path
    assert all(n.split("/")[0] == "knowledge-miner-0.1.0" for n in names)
    assert all(m.uid == 0 and m.uname == "root" for m in members)
    exe = next(m for m in members if m.name == "knowledge-miner-0.1.0/kminer")
    assert exe.mode & 0o111


@pytest.mark.skipif(shutil.which("sha256sum") is None, reason="needs sha256sum")
def test_checksums_verify_with_sha256sum(make_dist, tmp_path):
    a, b = tmp_path / "a.deb", tmp_path / "b.tar.gz"
    a.write_bytes(b"deb")
    b.write_bytes(b"tar" * 1000)
    sums = make_dist.write_checksums([a, b], tmp_path)
    subprocess.run(["sha256sum", "-c", sums.name], cwd=tmp_path, check=True, capture_output=True)
    subprocess.run(["sha256sum", "-c", "a.deb.sha256"], cwd=tmp_path, check=True, capture_output=True)
    b.write_bytes(b"tampered")
    assert subprocess.run(["sha256sum", "-c", sums.name], cwd=tmp_path, capture_output=True).returncode != 0


def test_missing_bundle_is_a_one_line_error(make_dist, tmp_path, capsys):
    assert make_dist.main(["--bundle", str(tmp_path / "nope"), "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "make package" in err


@needs_dpkg
def test_cuda_flavor_is_its_own_package_replacing_the_cpu_one(make_dist, tmp_path):
    bundle = _fake_bundle(tmp_path)
    stage = make_dist.stage_deb(bundle, tmp_path / "stage", "0.1.0", "amd64", ["libegl1"], "2.31", flavor="cuda")
    deb = make_dist.build_deb(stage, tmp_path / "t.deb", compress="gzip")
    f = _paragraph(subprocess.run(["dpkg-deb", "--field", str(deb)], capture_output=True, text=True, check=True).stdout)
    assert f["Package"] == "knowledge-miner-cuda"
    assert f["Conflicts"] == f["Replaces"] == "knowledge-miner"
    assert "libc6 (>= 2.31)" in f["Depends"] and "580.65.06" in f["Description"]
    cpu = make_dist.control_text("0.1.0", "amd64", 1, "libc6", "", "cpu")
    assert "Conflicts: knowledge-miner-cuda" in cpu


def _unpack(make_dist, tmp_path) -> Path:
    out = make_dist.build_tar(_fake_bundle(tmp_path), tmp_path / "k.tar.gz", "0.1.0")
    dest = tmp_path / "apps"
    dest.mkdir()
    with tarfile.open(out) as t:
        t.extractall(dest, filter="tar")
    return dest / "knowledge-miner-0.1.0"


def test_tarball_install_desktop_then_uninstall(make_dist, tmp_path):
    """The .tar.gz's own scripts, run as a user would: the menu entry runs this folder's kminer
    by its full path; uninstall removes the entry, the icon and the folder, and keeps the data."""
    folder = _unpack(make_dist, tmp_path)
    home = tmp_path / "home"
    data = home / ".local/share/knowledge-miner"
    data.mkdir(parents=True)
    (data / "wallet.json").write_text("keep me")
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin"}
    subprocess.run([str(folder / "install-desktop.sh")], env=env, check=True, capture_output=True)
    entry = home / ".local/share/applications/kminer.desktop"
    cp = configparser.ConfigParser(interpolation=None)
    cp.optionxform = str
    cp.read_string(entry.read_text())
    e = cp["Desktop Entry"]
    assert e["Exec"] == f'"{folder}/kminer"' and e["TryExec"] == f"{folder}/kminer"
    assert Path(e["Icon"]).is_file()
    # the Exec line really starts this folder's program
    assert subprocess.run([e["TryExec"]], capture_output=True, text=True).stdout.startswith("kminer")
    r = subprocess.run([str(folder / "uninstall.sh"), "--yes"], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert not folder.exists() and not entry.exists() and not Path(e["Icon"]).exists()
    assert (data / "wallet.json").read_text() == "keep me"


def test_uninstall_purge_data_needs_the_word_delete(make_dist, tmp_path):
    folder = _unpack(make_dist, tmp_path)
    home = tmp_path / "home"
    cfg = home / ".config/knowledge-miner"
    cfg.mkdir(parents=True)
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin"}
    r = subprocess.run([str(folder / "uninstall.sh"), "--yes", "--purge-data"], env=env, input="no\n",
                       capture_output=True, text=True)
    assert r.returncode == 0 and "data kept" in r.stdout and cfg.is_dir() and not folder.exists()
    folder = _unpack(make_dist, tmp_path / "again")
    r = subprocess.run([str(folder / "uninstall.sh"), "--yes", "--purge-data"], env=env, input="delete\n",
                       capture_output=True, text=True)
    assert r.returncode == 0 and not cfg.exists()
    # copied into a folder that is not a Knowledge Miner folder, it refuses and removes nothing
    other = tmp_path / "other"
    other.mkdir()
    script = other / "uninstall.sh"
    script.write_bytes(make_dist.HERE.joinpath("uninstall.sh").read_bytes())
    (other / "notes.txt").write_text("mine")
    bad = subprocess.run(["sh", str(script), "--yes"], env=env, capture_output=True, text=True)
    assert bad.returncode == 1 and "does not look like" in bad.stderr and (other / "notes.txt").exists()
