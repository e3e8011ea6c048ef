"""gpu.driver: the GPU bundle's driver floor and its one-line start-up check."""

from __future__ import annotations

import json

import pytest

from gpu.driver import MIN_DRIVER, driver_problem, installed_driver, parse_version, startup_problem


def test_versions_compare_as_numbers():
    assert parse_version("580.65.06") == (580, 65, 6)
    assert parse_version("580.105.08") > parse_version("580.65.06") > parse_version("575.64")
    with pytest.raises(ValueError):
        parse_version("580.65.06-beta")


@pytest.mark.parametrize("have,ok", [("580.65.06", True), ("580.105.08", True), ("590.1", True),
                                     ("575.57.08", False), ("535.104.05", False)])
def test_driver_problem_is_one_line_naming_both_versions(have, ok):
    why = driver_problem(have)
    assert (why is None) == ok
    if not ok:
        assert "\n" not in why and have in why and MIN_DRIVER in why and "CPU build" in why


def test_no_driver_and_odd_versions():
    assert "no NVIDIA driver" in driver_problem(None)
    assert driver_problem("weird") is None  # unknown format: CUDA decides, no false alarm


def test_startup_check_only_in_the_gpu_bundle(tmp_path):
    assert startup_problem(tmp_path, driver="535.104.05") is None  # no kminer_build.json: CPU bundle / source
    (tmp_path / "kminer_build.json").write_text(json.dumps({"flavor": "cpu"}))
    assert startup_problem(tmp_path, driver="535.104.05") is None
    (tmp_path / "kminer_build.json").write_text(json.dumps({"flavor": "cuda", "cuda": "13.0", "min_driver": "580.65.06"}))
    line = startup_problem(tmp_path, driver="535.104.05")
    assert line.startswith("kminer: NVIDIA driver 535.104.05 is too old") and "CUDA 13.0 needs 580.65.06" in line
    assert startup_problem(tmp_path, driver="580.82.07") is None
    (tmp_path / "kminer_build.json").write_text("{not json")
    assert startup_problem(tmp_path, driver="1.0") is None


def test_installed_driver_here_reads_nvml_without_raising():
    v = installed_driver()  # None on a machine without an NVIDIA driver (this one)
    assert v is None or parse_version(v)
