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
    assert (e["Type"], e["Exec"], e["Icon"], e["Terminal"]) == ("Application", "kminer", "kminer", "false")
    assert e["Categories"].endswith(";")


@needs_dpkg
def test_deb_installs_under_opt_with_link_desktop_entry_and_icon(make_dist, tmp_path):
    bundle = _fake_bundle(tmp_path)
    stage = make_dist.stage_deb(bundle, tmp_path / "stage", "0.1.0", "amd64", make_dist.runtime_deps(), "2.36")
    deb = make_dist.build_deb(stage, tmp_path / "t.deb", compress="gzip")
    info = subprocess.run(["dpkg-deb", "--field", str(deb)], capture_output=True, text=True, check=True).stdout
    f = _paragraph(info)
    assert f["Package"] == "knowledge-miner" and "libegl1" in f["Depends"] and f["Recommends"] == "bubblewrap"
    listing = subprocess.run(["dpkg-deb", "--contents", str(deb)], capture_output=True, text=True, check=True).stdout
    assert re.search(r"^-rwxr-xr-x root/root .* \./opt/knowledge-miner/kminer$", listing, re.M)
    assert re.search(r"\./usr/bin/kminer -> /opt/knowledge-miner/kminer$", listing, re.M)
    assert "./usr/share/applications/kminer.desktop" in listing
    assert "./usr/share/icons/hicolor/scalable/apps/kminer.svg" in listing
    assert "./opt/knowledge-miner/_internal/resources/data.json" in listing
    # Nothing in the package may reach into user folders: removal must leave wallets alone.
    paths = re.findall(r" \./(\S+)", listing)
    assert all(p.split("/")[0] in ("opt", "usr", "") for p in paths), paths
    ctl = subprocess.run(["dpkg-deb", "--ctrl-tarfile", str(deb)], capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(ctl)) as t:
        postrm = t.extractfile("./postrm").read().decode()
    assert "rm " not in postrm and "home" not in postrm.split("# ", 1)[0]


def test_tarball_has_one_top_folder_owned_by_root(make_dist, tmp_path):
    bundle = _fake_bundle(tmp_path)
    out = make_dist.build_tar(bundle, tmp_path / "k.tar.gz", "0.1.0")
    with tarfile.open(out) as t:
        members = t.getmembers()
    names = {m.name for m in members}
    assert {"knowledge-miner-0.1.0/kminer", "knowledge-miner-0.1.0/share/kminer.desktop",
            "knowledge-miner-0.1.0/share/kminer.svg"} <= names
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
