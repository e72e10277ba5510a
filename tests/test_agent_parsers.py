"""Pure parsers of the host agent, against the published captures in tests/fixtures/."""

from __future__ import annotations

import ast
import json
import math
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgetop.remote import agent

FIXTURES = Path(__file__).parent / "fixtures"
MIB = 1024 * 1024
BLOCK_HEADER = re.compile(r"^# (device|gpu): ")


def blocks(name: str) -> list[tuple[str, list[str]]]:
    """(comment line, non-empty lines) for each `# device:`/`# gpu:` block of a fixture."""
    out: list[tuple[str, list[str]]] = []
    for line in (FIXTURES / name).read_text().splitlines():
        if BLOCK_HEADER.match(line):
            out.append((line, []))
        elif out and line.strip():
            out[-1][1].append(line)
    return out


def block(name: str, marker: str) -> list[str]:
    found = [lines for comment, lines in blocks(name) if marker in comment]
    assert len(found) == 1, f"{marker!r} names {len(found)} blocks of {name}"
    return found[0]


def tegrastats_line(marker: str) -> str:
    lines = block("tegrastats.txt", marker)
    assert len(lines) == 1
    return lines[0]


TEGRASTATS_LINES = [lines[0] for _c, lines in blocks("tegrastats.txt")]
TEGRASTATS_KEYS = {
    "util",
    "emc_util",
    "per_core",
    "mem_used",
    "mem_total",
    "temp_c",
    "temps",
    "rails",
    "power_w",
}


def check_jetson_reading(r: dict[str, Any]) -> None:
    """Shape every parse result must have, whatever the input."""
    assert set(r) == TEGRASTATS_KEYS
    for key in ("util", "emc_util", "temp_c", "power_w"):
        assert r[key] is None or (isinstance(r[key], float) and math.isfinite(r[key])), key
    for key in ("mem_used", "mem_total"):
        assert r[key] is None or (isinstance(r[key], int) and r[key] >= 0), key
    if r["per_core"] is not None:
        assert all(v is None or isinstance(v, float) for v in r["per_core"])
    for key in ("temps", "rails"):
        if r[key] is not None:
            assert r[key] and all(
                isinstance(k, str) and isinstance(v, float) and math.isfinite(v)
                for k, v in r[key].items()
            )
    json.loads(agent.encode_line({"v": 1, "type": "sample", "reading": r}))


# --- tegrastats -------------------------------------------------------------------------------


def test_fixture_has_every_board() -> None:
    assert len(TEGRASTATS_LINES) == 15


@pytest.mark.parametrize("line", TEGRASTATS_LINES)
def test_tegrastats_parses_every_fixture_line(line: str) -> None:
    r = agent.parse_tegrastats(line)
    check_jetson_reading(r)
    # every published line has RAM and a CPU list
    assert r["mem_total"] is not None and r["mem_used"] is not None
    assert r["per_core"]


def test_tegrastats_nano_pom_rails() -> None:
    r = agent.parse_tegrastats(tegrastats_line("PR #16"))
    assert r["mem_used"] == 1446 * MIB
    assert r["mem_total"] == 3957 * MIB
    assert r["per_core"] == [17.0, 11.0, 21.0, 12.0]
    assert r["emc_util"] == 2.0
    assert r["util"] == 0.0
    # PMIC@100C is a placeholder, not a sensor
    assert r["temps"] == {"pll": 20.5, "cpu": 24.5, "gpu": 21.0, "ao": 29.5, "thermal": 22.25}
    assert r["temp_c"] == 21.0
    assert r["rails"] == {"POM_5V_IN": 2.83, "POM_5V_GPU": 0.041, "POM_5V_CPU": 0.943}
    assert r["power_w"] == 2.83  # POM_5V_IN is the module input: not summed with its parts


def test_tegrastats_tx2_bare_milliwatts_and_off_cores() -> None:
    r = agent.parse_tegrastats(tegrastats_line("const tx2Sample"))
    assert r["per_core"] == [1.0, None, None, 1.0, 0.0, 2.0]  # 'off' keeps its position
    assert r["rails"]["VDD_IN"] == 3.056
    assert r["rails"]["VDD_SYS_DDR"] == 0.883
    assert r["power_w"] == 3.056
    assert r["emc_util"] == 4.0
    assert r["temp_c"] == 35.0


def test_tegrastats_tx2_l4t28_rails() -> None:
    r = agent.parse_tegrastats(tegrastats_line("realtime_object_detection"))
    assert r["rails"] == {
        "VDD_IN": 1.931,
        "VDD_CPU": 0.231,
        "VDD_GPU": 0.154,
        "VDD_SOC": 0.385,
        "VDD_WIFI": 0.038,
        "VDD_DDR": 0.326,
    }
    assert r["per_core"] == [0.0] * 6


def test_tegrastats_non_root_lowercase_cpu() -> None:
    r = agent.parse_tegrastats(tegrastats_line("gtop issue #3"))
    assert r["per_core"] == [0.0] * 6
    assert r["mem_used"] == 2417 * MIB
    assert r["mem_total"] == 6660 * MIB
    for key in ("util", "emc_util", "temp_c", "temps", "rails", "power_w"):
        assert r[key] is None, key


def test_tegrastats_agx_xavier_rails_without_vdd_prefix() -> None:
    r = agent.parse_tegrastats(tegrastats_line("gtop PR #7"))
    assert r["mem_used"] == 14700 * MIB
    assert r["mem_total"] == 15692 * MIB
    assert r["per_core"] == [0.0] * 8
    assert r["util"] == 0.0
    assert r["emc_util"] == 0.0
    assert r["rails"] == {
        "GPU": 0.463,
        "CPU": 0.618,
        "SOC": 2.936,
        "CV": 0.0,
        "VDDRQ": 0.309,
        "SYS5V": 3.306,
    }
    # no module-input rail on AGX Xavier: the total is the sum of the rails
    assert r["power_w"] == pytest.approx(7.632)
    assert r["temp_c"] == 30.5
    assert r["temps"]["aux"] == 30.5
    assert "pmic" not in r["temps"]


def test_tegrastats_agx_xavier_32gb_off_cores() -> None:
    r = agent.parse_tegrastats(tegrastats_line("const agXSample"))
    assert r["per_core"] == [2.0, 0.0, 0.0, 0.0, None, None, None, None]
    assert r["mem_total"] == 31927 * MIB
    assert r["power_w"] == pytest.approx(0.311 + 0.932 + 0.621 + 1.482)


def test_tegrastats_orin_jetpack5_timestamp_two_gpcs_absent_sensors() -> None:
    r = agent.parse_tegrastats(tegrastats_line("orin_opt"))
    assert r["mem_used"] == 1282 * MIB
    assert r["mem_total"] == 62795 * MIB
    assert r["per_core"] == [0.0] * 12
    assert r["util"] == 0.0  # mean of GR3D_FREQ and GR3D2_FREQ
    assert r["emc_util"] == 0.0
    # CV0/CV1/CV2/GPU@-256C are absent sensors
    assert r["temps"] == {
        "cpu": 42.593,
        "tboard": 32.0,
        "soc2": 39.343,
        "tdiode": 33.25,
        "soc0": 39.375,
        "tj": 42.593,
        "soc1": 40.468,
    }
    assert r["temp_c"] == 42.593  # no GPU sensor: tj
    assert r["rails"] == {
        "VDD_GPU_SOC": 2.399,
        "VDD_CPU_CV": 0.4,
        "VIN_SYS_5V0": 4.032,
        "VDDQ_VDD2_1V8AO": 0.301,
    }  # the two 'NC' (not connected) channels are dropped
    assert r["power_w"] == pytest.approx(7.132)


def test_tegrastats_orin_gpc_array_forms() -> None:
    r = agent.parse_tegrastats(tegrastats_line("jetson_exporter issue #14"))
    assert r["util"] == 0.0  # 'GR3D_FREQ 0%@[0,0]'
    assert r["temp_c"] == 44.343
    r = agent.parse_tegrastats(tegrastats_line("test case '5.15.148'"))
    assert r["util"] == 0.0
    assert r["emc_util"] == 3.0
    assert r["per_core"][:6] == [14.0, 5.0, 8.0, 14.0, 46.0, 47.0]
    assert r["mem_used"] == 18207 * MIB
    assert r["rails"] == {"VDD_GPU_SOC": 2.412, "VDD_CPU_CV": 1.607, "VIN_SYS_5V0": 4.707}
    assert r["temp_c"] == 52.562  # lowercase 'tj' zone


def test_tegrastats_orin_nx_vdd_in_total() -> None:
    r = agent.parse_tegrastats(tegrastats_line("const voltageUnitSample"))
    assert r["per_core"] == [6.0, 9.0, 5.0, 16.0, None, None, None, None]
    assert r["rails"] == {"VDD_IN": 5.299, "VDD_CPU_GPU_CV": 0.773, "VDD_SOC": 1.424}
    assert r["power_w"] == 5.299
    assert r["temp_c"] == 45.875
    assert r["temps"]["cv0"] == 45.812


def test_tegrastats_orin_nano_matches_protocol_example() -> None:
    r = agent.parse_tegrastats(tegrastats_line("beszel"))
    assert r == {
        "util": 63.0,
        "emc_util": 43.0,
        "per_core": [15.0, 11.0, 14.0, 13.0, 11.0, 8.0],
        "mem_used": 6485442560,
        "mem_total": 7990149120,
        "temp_c": 53.343,
        "temps": {
            "cpu": 53.968,
            "soc2": 52.437,
            "soc0": 50.75,
            "gpu": 53.343,
            "tj": 53.968,
            "soc1": 51.656,
        },
        "rails": {"VDD_IN": 12.479, "VDD_CPU_GPU_CV": 4.667, "VDD_SOC": 2.817},
        "power_w": 12.479,
    }


def test_tegrastats_orin_non_root_without_emc() -> None:
    r = agent.parse_tegrastats(tegrastats_line("const orinSample"))
    assert r["util"] == 0.0  # 'GR3D_FREQ 0%' without frequency
    assert r["emc_util"] is None
    assert r["temp_c"] == 37.75
    assert r["power_w"] == pytest.approx(4.94 + 0.988 + 4.442)


def test_tegrastats_thor_gpc_array_without_load() -> None:
    r = agent.parse_tegrastats(tegrastats_line("test case '6.8.12'"))
    assert r["util"] is None  # 'GR3D_FREQ @[0,0,0]' has no percent
    assert len(r["per_core"]) == 14
    assert r["mem_total"] == 125773 * MIB
    assert r["temps"] == {"cpu": 34.468, "tj": 34.5, "soc012": 33.781, "soc345": 34.5}
    assert r["temp_c"] == 34.5
    assert r["rails"] == {"VDD_GPU": 0.0, "VDD_CPU_SOC_MSS": 4.165, "VIN_SYS_5V0": 4.126}
    assert r["power_w"] == pytest.approx(8.291)


def test_tegrastats_second_gpc_is_averaged() -> None:
    r = agent.parse_tegrastats("RAM 1/2MB GR3D_FREQ 40%@1300 GR3D2_FREQ 80%@1300")
    assert r["util"] == 60.0


def test_tegrastats_garbage_gives_nulls() -> None:
    for text in ("", "hello world", "RAM x/yMB CPU [", "\x00\xff" * 10):
        assert agent.parse_tegrastats(text) == dict.fromkeys(TEGRASTATS_KEYS)


@given(st.text())
def test_tegrastats_random_text_never_raises(text: str) -> None:
    check_jetson_reading(agent.parse_tegrastats(text))


@given(st.text(alphabet="0123456789 %@/.,[]CRAMBWmGPUVDIN_-", max_size=300))
def test_tegrastats_digit_soup_never_raises(text: str) -> None:
    check_jetson_reading(agent.parse_tegrastats(text))
    check_jetson_reading(agent.parse_tegrastats("RAM " + "9" * 5000 + "/1MB " + text))


@given(
    st.sampled_from(TEGRASTATS_LINES),
    st.lists(
        st.tuples(
            st.floats(0, 1, exclude_max=True),
            st.sampled_from(["delete", "insert", "replace", "cut"]),
            st.text(min_size=1, max_size=4),
        ),
        max_size=12,
    ),
)
def test_tegrastats_mutated_real_lines_never_raise(line: str, edits: list[Any]) -> None:
    for where, op, text in edits:
        pos = int(where * (len(line) + 1))
        if op == "delete":
            line = line[:pos] + line[pos + 1 :]
        elif op == "insert":
            line = line[:pos] + text + line[pos:]
        elif op == "replace":
            line = line[:pos] + text + line[pos + len(text) :]
        else:
            line = line[:pos]
    check_jetson_reading(agent.parse_tegrastats(line))


@given(st.sampled_from(TEGRASTATS_LINES), st.randoms(use_true_random=False))
def test_tegrastats_shuffled_tokens_never_raise(line: str, rnd: Any) -> None:
    tokens = line.split(" ")
    rnd.shuffle(tokens)
    check_jetson_reading(agent.parse_tegrastats(" ".join(tokens[: rnd.randint(0, len(tokens))])))


# --- /etc/nv_tegra_release, JetPack, nvpmodel ---------------------------------------------------


def release_blocks() -> list[tuple[str, list[str]]]:
    return [
        (c, lines)
        for c, lines in blocks("jetson-release.txt")
        if re.search(r"command: (cat|contents of) /etc/nv_tegra_release", c)
    ]


def test_every_nv_tegra_release_matches_its_stated_l4t_and_jetpack() -> None:
    found = release_blocks()
    assert len(found) == 6
    for comment, lines in found:
        stated = re.search(r"L4T (R\d+\.\d+\.\d+)", comment)
        assert stated, comment
        l4t = agent.parse_nv_tegra_release("\n".join(lines))
        assert l4t == stated.group(1)
        jetpack = re.search(r"(?:JetPack |nvidia-jetpack )(\d+(?:\.\d+)+)", comment)
        assert jetpack, comment
        assert agent.jetpack_for_l4t(l4t) == jetpack.group(1)


def test_l4t_exact() -> None:
    lines = [lines[0] for _c, lines in release_blocks()]
    assert [agent.parse_nv_tegra_release(line) for line in lines] == [
        "R32.5.1",
        "R35.4.1",
        "R36.4.3",
        "R36.4.4",
        "R38.2.0",
        "R39.2.0",
    ]


def test_jetpack_table() -> None:
    assert agent.jetpack_for_l4t("R32.5.1") == "4.5.1"
    assert agent.jetpack_for_l4t("R32.7.4") == "4.6.4"
    assert agent.jetpack_for_l4t("R35.4.1") == "5.1.2"
    assert agent.jetpack_for_l4t("R36.4.3") == "6.2"
    assert agent.jetpack_for_l4t("R36.4.4") == "6.2.1"
    assert agent.jetpack_for_l4t("R38.2.0") == "7.0"
    assert agent.jetpack_for_l4t("R39.2.0") == "7.2"
    assert agent.jetpack_for_l4t("R99.1.0") is None
    assert agent.jetpack_for_l4t(None) is None
    assert agent.parse_nv_tegra_release("not a release file") is None


def test_nvpmodel_outputs_including_error_lines() -> None:
    found = [(c, lines) for c, lines in blocks("jetson-release.txt") if "nvpmodel -q" in c]
    modes = [agent.parse_nvpmodel("\n".join(lines)) for _c, lines in found]
    assert modes == ["5W", "5W", "MAXN", "MODE_30W", "MAXN"]
    assert agent.parse_nvpmodel("NVPM ERROR: Error opening /sys/...: 13\n") is None


# --- nvidia-smi --------------------------------------------------------------------------------


def csv_block(header_prefix: str) -> tuple[list[str], str]:
    """(fields from the CSV header, the block's text) of a --format=csv capture."""
    for _comment, lines in blocks("nvidia-smi.txt"):
        if lines and lines[0].startswith(header_prefix):
            return [f.strip() for f in lines[0].split(",")], "\n".join(lines)
    raise AssertionError(header_prefix)


def test_smi_full_query_gpu_capture() -> None:
    fields, text = csv_block("timestamp, driver_version")
    assert len(fields) > 200
    rows = agent.parse_nvidia_smi_csv(text, fields)
    assert len(rows) == 1  # the header row is recognised and skipped
    row = rows[0]
    assert len(row) == len(fields)
    assert row["driver_version"] == "590.48.01"
    assert row["name"] == "NVIDIA H100 80GB HBM3"
    assert row["uuid"] == "GPU-00000000-0000-0000-0000-000000000000"
    assert row["index"] == 0
    assert row["memory.total"] == 81559 * MIB  # '81559 MiB' with units
    assert row["memory.used"] == 0
    assert row["memory.reserved"] == 479 * MIB
    assert row["utilization.gpu"] == 0.0
    assert row["temperature.gpu"] == 41.0
    assert row["power.draw"] == 69.85
    assert row["power.limit"] == 700.0
    assert row["clocks.current.sm"] == 345
    assert row["clocks.max.sm"] == 1980
    assert row["clocks_event_reasons.active"] == ["gpu_idle"]  # 0x0000000000000001
    assert row["pstate"] == "P0"
    assert row["mig.mode.current"] == "Disabled"
    # every flavour of "no value" is null
    assert row["display_mode"] is None  # [Requested functionality has been deprecated]
    assert row["fan.speed"] is None  # [N/A]
    assert row["fabric.health.summary"] is None  # N/A
    assert row["platform.chassis_serial_number"] is None  # empty


def test_smi_query_compute_apps_capture() -> None:
    fields, text = csv_block("timestamp, gpu_name")
    rows = agent.parse_nvidia_smi_csv(text, fields)
    assert [(r["pid"], r["process_name"], r["used_gpu_memory"]) for r in rows] == [
        (21180, "/root/tools/memhog", 2296 * MIB),
        (21181, "/root/tools/memhog", 1272 * MIB),
        (21198, "./gpu_burn", 7484 * MIB),
    ]
    assert {r["gpu_uuid"] for r in rows} == {"GPU-00000000-0000-0000-0000-000000000000"}


def test_smi_small_queries() -> None:
    fields, text = csv_block("pci.bus_id, mig.mode.current")
    assert agent.parse_nvidia_smi_csv(text, fields) == [
        {"pci.bus_id": "00000000:4F:00.0", "mig.mode.current": "Enabled"}
    ]
    fields, text = csv_block("driver_version")
    assert agent.parse_nvidia_smi_csv(text, fields) == [{"driver_version": "460.91.03"}]


@pytest.mark.parametrize(
    "marker",
    ["illinois-scicomp", "tinygrad/open-gpu-kernel-modules", "open-gpu-kernel-modules issue #862"],
)
def test_smi_error_outputs_give_no_rows(marker: str) -> None:
    text = "\n".join(block("nvidia-smi.txt", marker))
    assert agent.parse_nvidia_smi_csv(text, agent.SMI_GPU_FIELDS) == []
    assert agent.parse_nvidia_smi_csv(text, ["driver_version"]) == []


def test_smi_nounits_row_as_the_collector_queries() -> None:
    # The idle H100 CSV capture's values in the agent's own query (noheader,nounits form).
    fields = (*agent.SMI_GPU_FIELDS, "clocks_event_reasons.active")
    line = (
        "0, GPU-00000000-0000-0000-0000-000000000000, NVIDIA H100 80GB HBM3, 0, 0, 81559, 41, "
        "69.85, 700.00, 345, 0x0000000000000001"
    )
    assert agent.parse_nvidia_smi_csv(line, fields) == [
        {
            "index": 0,
            "uuid": "GPU-00000000-0000-0000-0000-000000000000",
            "name": "NVIDIA H100 80GB HBM3",
            "utilization.gpu": 0.0,
            "memory.used": 0,
            "memory.total": 81559 * MIB,
            "temperature.gpu": 41.0,
            "power.draw": 69.85,
            "power.limit": 700.0,
            "clocks.sm": 345,
            "clocks_event_reasons.active": ["gpu_idle"],
        }
    ]
    # MIG-enabled GPU: utilisation is N/A; an older board without power readings
    line = "0, GPU-x, NVIDIA H100 80GB HBM3, [N/A], 11125, 81559, 52, [Not Supported], N/A, , 0x4"
    row = agent.parse_nvidia_smi_csv(line, fields)[0]
    assert row["utilization.gpu"] is None
    assert row["memory.used"] == 11125 * MIB
    assert row["power.draw"] is None
    assert row["power.limit"] is None
    assert row["clocks.sm"] is None
    assert row["clocks_event_reasons.active"] == ["sw_power_cap"]


def test_smi_banner_of_every_table() -> None:
    found = []
    for _comment, lines in blocks("nvidia-smi.txt"):
        text = "\n".join(lines)
        if "Driver Version" in text:
            found.append(agent.parse_nvidia_smi_banner(text))
    assert found == [
        ("590.48.01", "13.1"),
        ("590.48.01", "13.1"),
        ("590.48.01", "13.1"),
        ("550.90.07", "12.4"),
        ("450.80.02", "11.0"),
        ("450.80.02", "11.0"),
        ("515.105.01", "11.7"),
        ("515.65.01", "11.7"),
    ]
    assert agent.parse_nvidia_smi_banner("No devices were found") == (None, None)


@given(st.text(), st.lists(st.sampled_from(agent.SMI_GPU_FIELDS), min_size=1, max_size=5))
def test_smi_csv_garbage_never_raises(text: str, fields: list[str]) -> None:
    for row in agent.parse_nvidia_smi_csv(text, fields):
        assert set(row) == set(fields)


@given(
    st.lists(st.sampled_from(["0", "[N/A]", "N/A", "12.5 W", "0x1", "x", "", "-3"]), min_size=11)
)
def test_smi_cells_never_raise(cells: list[str]) -> None:
    fields = (*agent.SMI_GPU_FIELDS, "clocks_event_reasons.active")
    line = ", ".join(cells[: len(fields)])
    rows = agent.parse_nvidia_smi_csv(line, fields)
    assert len(rows) == 1
    json.loads(agent.encode_line({"rows": rows}))


def test_smi_field_name_strips_units() -> None:
    assert agent.smi_field_name("memory.used [MiB]") == "memory.used"
    assert agent.smi_field_name(" power.draw [W] ") == "power.draw"
    assert agent.smi_field_name("index") == "index"


# --- NVIDIA small helpers ----------------------------------------------------------------------


def test_decode_throttle_reasons() -> None:
    assert agent.decode_throttle_reasons(0) == []
    assert agent.decode_throttle_reasons(0x1) == ["gpu_idle"]
    assert agent.decode_throttle_reasons(0x4 | 0x40) == ["sw_power_cap", "hw_thermal_slowdown"]
    assert agent.decode_throttle_reasons(0x2 | 0x8 | 0x10 | 0x20 | 0x80) == [
        "applications_clocks_setting",
        "hw_slowdown",
        "sync_boost",
        "sw_thermal_slowdown",
        "hw_power_brake_slowdown",
    ]
    assert agent.decode_throttle_reasons(0x1 | 0x10000) == ["gpu_idle", "0x10000"]
    # a garbage negative value must terminate (it once looped forever growing ints)
    assert len(agent.decode_throttle_reasons(-1)) == 64
    assert agent.smi_value("-3", "reasons") is None


def test_cuda_version_string() -> None:
    assert agent.cuda_version_string(12040) == "12.4"
    assert agent.cuda_version_string(13010) == "13.1"
    assert agent.cuda_version_string(11000) == "11.0"
    assert agent.cuda_version_string(agent.NA) is None
    assert agent.cuda_version_string(0) is None


def test_mig_profile_name() -> None:
    assert agent.mig_profile_name("NVIDIA H100 80GB HBM3 MIG 1g.10gb") == "1g.10gb"
    assert agent.mig_profile_name("NVIDIA A100-SXM4-40GB MIG 3g.20gb") == "3g.20gb"
    assert agent.mig_profile_name("Something else") == "Something else"
    assert agent.mig_profile_name(None) is None


# --- host facts --------------------------------------------------------------------------------


def test_os_release() -> None:
    text = 'NAME="Ubuntu"\nVERSION_ID="22.04"\nPRETTY_NAME="Ubuntu 22.04.4 LTS"\n# c\nID=ubuntu\n'
    parsed = agent.parse_os_release(text)
    assert parsed["PRETTY_NAME"] == "Ubuntu 22.04.4 LTS"
    assert parsed["ID"] == "ubuntu"


def test_cpuinfo_model() -> None:
    x86 = "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) Gold 6248\n"
    assert agent.parse_cpuinfo_model(x86) == "Intel(R) Xeon(R) Gold 6248"
    jetson = "processor\t: 0\nmodel name\t: ARMv8 Processor rev 1 (v8l)\nBogoMIPS\t: 62.50\n"
    assert agent.parse_cpuinfo_model(jetson) == "ARMv8 Processor rev 1 (v8l)"
    rpi = "processor\t: 0\nBogoMIPS\t: 108.00\n\nHardware\t: BCM2835\nModel\t\t: Raspberry Pi 4\n"
    assert agent.parse_cpuinfo_model(rpi) == "Raspberry Pi 4"
    assert agent.parse_cpuinfo_model("processor\t: 0\nHardware\t: NVIDIA Tegra X1\n") == (
        "NVIDIA Tegra X1"
    )
    assert agent.parse_cpuinfo_model("") is None


def test_device_tree_model_strips_nul() -> None:
    raw = b"NVIDIA Jetson AGX Orin Developer Kit\x00"
    assert agent.parse_device_tree_model(raw) == "NVIDIA Jetson AGX Orin Developer Kit"
    assert agent.parse_device_tree_model(b"\x00") is None
    assert agent.parse_device_tree_model(None) is None


def test_meminfo() -> None:
    text = (
        "MemTotal:       16384000 kB\nMemFree:  1000 kB\nMemAvailable:    8192000 kB\n"
        "HugePages_Total:       0\n"
    )
    info = agent.parse_meminfo(text)
    assert info["MemTotal"] == 16384000 * 1024
    assert info["HugePages_Total"] == 0
    assert agent.meminfo_used_total(info) == (8192000 * 1024, 16384000 * 1024)
    old = agent.parse_meminfo("MemTotal: 100 kB\nMemFree: 10 kB\nBuffers: 5 kB\nCached: 20 kB\n")
    assert agent.meminfo_used_total(old) == (65 * 1024, 100 * 1024)
    assert agent.meminfo_used_total({}) == (None, None)


def test_proc_stat_and_cpu_percent() -> None:
    before = agent.parse_proc_stat(
        "cpu  100 0 100 800 0 0 0 0 0 0\ncpu0 50 0 50 400 0 0 0 0 0 0\n"
        "cpu1 50 0 50 400 0 0 0 0 0 0\nintr 1 2 3\n"
    )
    after = agent.parse_proc_stat(
        "cpu  200 0 100 900 0 0 0 0 0 0\ncpu0 150 0 50 400 0 0 0 0 0 0\n"
        "cpu1 50 0 50 500 0 0 0 0 0 0\n"
    )
    assert before["cpu"] == (1000, 800)
    assert agent.cpu_percent(before["cpu"], after["cpu"]) == 50.0
    assert agent.cpu_percent(before["cpu0"], after["cpu0"]) == 100.0
    assert agent.cpu_percent(before["cpu1"], after["cpu1"]) == 0.0
    assert agent.cpu_percent(before["cpu"], before["cpu"]) is None  # no time passed
    assert agent.cpu_percent(None, after["cpu"]) is None
    # iowait counts as idle
    io = agent.parse_proc_stat("cpu 10 0 10 70 10 0 0 0\n")
    assert io["cpu"] == (100, 80)


def test_loadavg() -> None:
    assert agent.parse_loadavg("0.10 0.20 0.30 1/211 12345\n") == [0.1, 0.2, 0.3]
    assert agent.parse_loadavg("garbage") is None


def test_pick_cpu_temp() -> None:
    pick = agent.pick_cpu_temp
    assert pick([("acpitz", "/a"), ("x86_pkg_temp", "/b")]) == "/b"
    assert pick([("nvme", "/n"), ("k10temp", "/k")]) == "/k"
    assert pick([("CPU-therm", "/c"), ("GPU-therm", "/g")]) == "/c"
    assert pick([("cpu-thermal", "/c"), ("gpu-thermal", "/g")]) == "/c"
    assert pick([("acpitz", "/a")]) is None


@given(st.text())
def test_host_parsers_never_raise(text: str) -> None:
    agent.parse_os_release(text)
    agent.parse_cpuinfo_model(text)
    agent.parse_meminfo(text)
    agent.parse_proc_stat(text)
    agent.parse_loadavg(text)
    agent.parse_nvpmodel(text)
    agent.parse_nv_tegra_release(text)
    agent.parse_device_tree_model(text)
    agent.parse_nvidia_smi_banner(text)
    agent.parse_proc_cgroup(text)
    agent.parse_cgroup_mounts(text)
    agent.cpu_quota_v2(text)
    agent.memory_limit(text)


# --- wire encoding -----------------------------------------------------------------------------


def test_encode_line_is_compact_json_without_nan() -> None:
    line = agent.encode_line({"v": 1, "a": float("nan"), "b": [float("inf"), 1.5], "c": agent.NA})
    assert line == b'{"v":1,"a":null,"b":[null,1.5],"c":null}\n'


def test_agent_source_is_this_file_and_parses_as_python38() -> None:
    source = agent.agent_source()
    assert source == Path(agent.__file__).read_bytes()
    ast.parse(source, feature_version=(3, 8))
    assert agent.AGENT_VERSION == "1.0.0"
    assert agent.PROTOCOL_VERSION == 1
