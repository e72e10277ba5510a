"""Device profiles: complete, self-consistent, and faithful to the reference table."""

from __future__ import annotations

import dataclasses

import pytest

from edgetop.core.profiles import PROFILES, DeviceProfile, UnknownProfileError, get_profile
from edgetop.remote.errors import EdgetopError

GIB = 1024**3

EXPECTED_NAMES = {
    "a100-40gb",
    "a100-80gb",
    "a100-sxm4-40gb",
    "v100-16gb",
    "t4",
    "jetson-agx-xavier",
    "jetson-xavier-nx",
    "jetson-agx-orin",
    "jetson-orin-nx",
    "jetson-orin-nano",
    "cpu-8c",
}


def test_all_profiles_present() -> None:
    assert set(PROFILES) == EXPECTED_NAMES
    for name, profile in PROFILES.items():
        assert profile.name == name


def test_profiles_mapping_is_read_only() -> None:
    with pytest.raises(TypeError):
        PROFILES["x"] = PROFILES["t4"]  # type: ignore[index]


def test_profile_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        PROFILES["t4"].tdp_w = 1.0  # type: ignore[misc]


@pytest.mark.parametrize("profile", list(PROFILES.values()), ids=list(PROFILES))
def test_profile_invariants(profile: DeviceProfile) -> None:
    assert profile.kind in ("gpu-server", "jetson", "cpu")
    assert profile.display_name
    assert profile.fp32_tflops > 0
    assert profile.fp16_tflops is None or profile.fp16_tflops > profile.fp32_tflops
    assert profile.int8_tops is None or profile.int8_tops > 0
    assert profile.memory_bytes > 0 and profile.memory_bytes % GIB == 0
    assert profile.memory_bw_gbs > 0
    assert 0 < profile.idle_power_w < profile.tdp_w
    assert profile.cpu_cores > 0
    assert profile.power_modes and len(set(profile.power_modes)) == len(profile.power_modes)
    assert profile.default_power_mode in profile.power_modes
    assert profile.source.strip()


def test_kinds() -> None:
    kinds = {name: p.kind for name, p in PROFILES.items()}
    assert {n for n, k in kinds.items() if k == "gpu-server"} == {
        "a100-40gb",
        "a100-80gb",
        "a100-sxm4-40gb",
        "v100-16gb",
        "t4",
    }
    assert kinds["cpu-8c"] == "cpu"
    assert all(kinds[n] == "jetson" for n in EXPECTED_NAMES if n.startswith("jetson-"))


# Figures copied from device_specs.csv: (fp32, fp16 tensor, int8 dense, GB, GB/s, W).
SPEC_ROWS = {
    "a100-40gb": (19.5, 312.0, 624.0, 40, 1555.0, 250.0),
    "a100-80gb": (19.5, 312.0, 624.0, 80, 1935.0, 300.0),
    "a100-sxm4-40gb": (19.5, 312.0, 624.0, 40, 1555.0, 400.0),
    "v100-16gb": (14.0, 112.0, None, 16, 900.0, 250.0),
    "t4": (8.1, 65.0, 130.0, 16, 320.0, 70.0),
    "jetson-agx-xavier": (1.4, 11.0, 32.0, 32, 137.0, 30.0),
    "jetson-xavier-nx": (0.85, 6.0, 21.0, 8, 51.2, 15.0),
    "jetson-agx-orin": (5.3, None, 137.0, 64, 204.8, 60.0),
    "jetson-orin-nx": (1.9, None, 50.0, 16, 102.0, 25.0),
    "jetson-orin-nano": (1.3, None, 20.0, 8, 68.0, 15.0),
}


@pytest.mark.parametrize("name", list(SPEC_ROWS))
def test_figures_match_reference_table(name: str) -> None:
    fp32, fp16, int8, gb, bw, watts = SPEC_ROWS[name]
    p = PROFILES[name]
    assert (p.fp32_tflops, p.fp16_tflops, p.int8_tops) == (fp32, fp16, int8)
    assert p.memory_bytes == gb * GIB
    assert (p.memory_bw_gbs, p.tdp_w) == (bw, watts)
    assert "device_specs.csv" in p.source


def test_display_names_and_power_modes() -> None:
    assert PROFILES["a100-40gb"].display_name == "NVIDIA A100-PCIE-40GB"
    assert PROFILES["jetson-agx-xavier"].display_name == "Jetson AGX Xavier"
    assert PROFILES["jetson-agx-xavier"].power_modes == ("MAXN", "30W", "15W", "10W")
    assert PROFILES["jetson-agx-xavier"].default_power_mode == "MAXN"


def test_cpu_box_is_generic() -> None:
    p = PROFILES["cpu-8c"]
    assert p.cpu_cores == 8
    assert p.memory_bytes == 32 * GIB
    assert p.fp16_tflops is None and p.int8_tops is None
    assert "generic" in p.source


def test_get_profile() -> None:
    assert get_profile("t4") is PROFILES["t4"]


def test_get_profile_unknown_lists_valid_names() -> None:
    with pytest.raises(UnknownProfileError) as info:
        get_profile("a100")
    err = info.value
    assert isinstance(err, KeyError) and isinstance(err, EdgetopError)
    message = str(err)
    assert "'a100'" in message
    for name in PROFILES:
        assert name in message
    assert "\n" not in message


def test_get_profile_unhashable_input() -> None:
    with pytest.raises(KeyError):
        get_profile(["t4"])  # type: ignore[arg-type]
