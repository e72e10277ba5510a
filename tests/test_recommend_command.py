"""`edgetop recommend` on simulated fleets: the JSON contract, the table, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from agentlines import hello_view
from fleets import SIM_PAIR

from edgetop.core.fleet import FleetSnapshot, HostView
from edgetop.core.live import fleet_from_snapshot, profile_for_name
from edgetop.core.profiles import CPU_CORE_TFLOPS
from edgetop.models.catalog import load_catalog
from edgetop.models.predictor import LatencyPredictor
from edgetop.models.schedfeatures import FEATURE_NAMES
from edgetop.remote.link import HostStatus
from edgetop.remote.protocol import DeploymentReading, DeviceReading
from edgetop.tui.cli import main

GONE = """
[[host]]
name = "gone"
transport = "ssh"
address = "127.0.0.1"
port = 1
interval = 0.05
"""


def tiny_predictor(version: str = "test-tiny") -> LatencyPredictor:
    """A one-member network whose output is its linear shortcut: log latency rises with the
    roofline compute time, so faster devices predict lower latency."""
    d = len(FEATURE_NAMES)
    shortcut = np.zeros((1, d, 2), dtype=np.float32)
    compute = FEATURE_NAMES.index("log_compute_ms")
    shortcut[0, compute] = [1.0, 1.0]
    return LatencyPredictor(
        weights=(np.zeros((1, d, 4), np.float32), np.zeros((1, 4, 2), np.float32)),
        biases=(np.zeros((1, 4), np.float32), np.zeros((1, 2), np.float32)),
        shortcut=shortcut,
        x_mean=np.zeros(d),
        x_std=np.ones(d),
        y_mean=np.array([1.0, 1.5]),  # p99 = p50 x e^0.5
        y_std=np.ones(2),
        version=version,
    )


@pytest.fixture
def weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "weights.npz"
    tiny_predictor().save(path)
    monkeypatch.setenv("EDGETOP_WEIGHTS", str(path))
    return path


def hosts(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hosts.toml"
    path.write_text(text)
    return path


def run(tmp_path: Path, fleet: str, *extra: str) -> int:
    return main(["recommend", *extra, "--timeout", "10", "--hosts", str(hosts(tmp_path, fleet))])


def test_json_ranks_sim_devices_and_rejects_an_offline_host(
    tmp_path: Path, weights: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet = SIM_PAIR.format(jetson="xavier-1") + GONE
    code = run(tmp_path, fleet, "resnet50", "--batch", "8", "--slo", "1000", "--json")
    data = json.loads(capsys.readouterr().out)
    assert code == 0
    assert [c["host"] for c in data["candidates"]] == ["a100-1", "xavier-1"]
    for c in data["candidates"]:
        assert {"host", "device", "p50_ms", "p99_ms", "confidence", "reason"} <= c.keys()
        assert c["device"] == "gpu0" and c["p99_ms"] > c["p50_ms"] > 0
        assert "predicted (SLO 1,000 ms)" in c["reason"]
    (gone,) = data["rejected"]
    assert gone["host"] == "gone" and gone["reason"].startswith("offline: ")
    assert "connection refused" in gone["reason"]
    assert data["predictor"] == "test-tiny" and data["chosen"] == "a100-1/gpu0"


def test_exit_1_when_no_device_meets_the_slo(
    tmp_path: Path, weights: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet = SIM_PAIR.format(jetson="xavier-1")
    assert run(tmp_path, fleet, "bert-large", "--batch", "32", "--slo", "0.01", "--json") == 1
    data = json.loads(capsys.readouterr().out)
    assert data["candidates"] == [] and data["chosen"] is None
    assert {r["host"] for r in data["rejected"]} == {"a100-1", "xavier-1"}
    assert all(r["reason"].endswith("> SLO 0.01 ms") for r in data["rejected"])


def test_table_output(tmp_path: Path, weights: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fleet = SIM_PAIR.format(jetson="xavier-1")
    assert run(tmp_path, fleet, "dlrm", "--batch", "1", "--slo", "500", "--top", "1") == 0
    out = capsys.readouterr().out
    assert "dlrm batch 1, p99 SLO 500 ms, objective latency: 1 candidate(s) of 2" in out
    assert "a100-1" in out and "p99 ms" in out


def test_unknown_model_is_bad_input(
    tmp_path: Path, weights: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet = SIM_PAIR.format(jetson="xavier-1")
    assert run(tmp_path, fleet, "no-such-model", "--batch", "1", "--slo", "10") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("edgetop recommend: error: unknown model 'no-such-model'")
    assert len(err.splitlines()) == 1


def test_unusable_weights_are_bad_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("EDGETOP_WEIGHTS", str(tmp_path / "missing.npz"))
    fleet = SIM_PAIR.format(jetson="xavier-1")
    assert run(tmp_path, fleet, "resnet50", "--batch", "1", "--slo", "10") == 2
    assert "no such file" in capsys.readouterr().err


# -- the live fleet as candidates (core/live.py), from hand-built snapshots --------------------


def host(name: str, *devices: DeviceReading, status: HostStatus = HostStatus.ONLINE,
         transport: str = "ssh", **kw: object) -> HostView:  # fmt: skip
    return HostView(name, transport, kw.pop("kind", "gpu-server"), 1.0, status=status,  # type: ignore[arg-type]
                    devices=devices, samples=1, sample_at=100.0, **kw)  # type: ignore[arg-type]  # fmt: skip


def test_live_gpu_names_map_to_profiles_with_live_state() -> None:
    gpu = DeviceReading("gpu0", "gpu", "NVIDIA A100 80GB PCIe", util=25.0, mem_used=10 << 30,
                        mem_total=80 << 30, temp_c=61.0, power_limit_w=300.0,
                        throttle=("gpu_idle", "sw_thermal_slowdown"))  # fmt: skip
    running = DeploymentReading("w1", "running", "resnet50", 8, "server", 15.0, p50_ms=3.0,
                                p99_ms=5.0, throughput=400.0)  # fmt: skip
    stopped = DeploymentReading("w2", "stopped", "dlrm", 1)
    view = host("g1", DeviceReading("cpu", "cpu"), gpu, hello=hello_view(),
                deployments=(running, stopped))  # fmt: skip
    fleet = fleet_from_snapshot(FleetSnapshot((view,)), catalog=load_catalog())
    (slot,) = fleet.slots
    assert (slot.key, slot.profile, slot.busy_power_w) == ("g1/gpu0", "a100-80gb", 300.0)
    f = slot.features
    assert f.kind == "gpu-server" and f.peak_tflops == 624.0 and not f.edge
    assert f.mem_free_bytes == 70 << 30 and f.util == 0.25 and f.temp_c == 61.0
    assert f.throttled and f.colocated == 1
    (dep,) = slot.deployments
    assert (dep.id, dep.model, dep.qps, dep.p99_ms) == ("w1", "resnet50", 400.0, 5.0)
    assert dep.workload is not None and dep.workload.name == "resnet50"


def test_live_cpu_host_from_quota_and_cgroup_memory() -> None:
    cpu = DeviceReading("cpu", "cpu", util=10.0, mem_used=256 << 20, mem_total=1 << 30)
    view = host("box", cpu, kind="cpu", hello=hello_view(cpu_count=8, cpu_quota=0.4,
                                                     mem_limit=1 << 30))  # fmt: skip
    (slot,) = fleet_from_snapshot(FleetSnapshot((view,))).slots
    f = slot.features
    assert slot.device == "cpu" and slot.profile is None
    assert f.kind == "cpu" and f.edge
    assert f.peak_tflops == pytest.approx(0.4 * CPU_CORE_TFLOPS)
    assert f.mem_total_bytes == 1 << 30 and f.mem_free_bytes == 768 << 20
    assert f.util == pytest.approx(0.1)


def test_live_unavailable_hosts_become_rejected_candidates() -> None:
    gone = host("gone", status=HostStatus.OFFLINE, reason="connection refused")
    stale = host("old", DeviceReading("gpu0", "gpu", "Tesla T4"), status=HostStatus.STALE)
    odd = host("odd", DeviceReading("gpu0", "gpu", "Radeon Instinct MI100"), hello=hello_view())
    sim = host("s1", DeviceReading("gpu0", "gpu", "whatever"), transport="sim",
               hello=hello_view(os="simulated (v100-16gb)"))  # fmt: skip
    fleet = fleet_from_snapshot(FleetSnapshot((gone, stale, odd, sim)), now=130.0)
    by = {s.host: s for s in fleet.slots}
    assert not by["gone"].online and by["gone"].reason == "offline: connection refused"
    assert not by["old"].online and by["old"].reason == "stale: last sample 30 s ago"
    recent = fleet_from_snapshot(FleetSnapshot((stale,)), now=100.2).slots[0]
    assert recent.reason == "stale: last sample 0.2 s ago"  # not "0 s ago", which reads as fresh
    assert not by["odd"].online and "no device profile" in (by["odd"].reason or "")
    assert by["s1"].online and by["s1"].profile == "v100-16gb"
    assert profile_for_name("Jetson Xavier NX") == "jetson-xavier-nx"
    assert profile_for_name("Orin Nano") == "jetson-orin-nano"
    assert profile_for_name("GeForce RTX 4090") is None


def test_live_power_mode_sets_the_power_fraction() -> None:
    """As training does: the mode's budget over the top mode's (AGX Xavier: MAXN = 30 W)."""
    xavier = DeviceReading("gpu0", "jetson", "Jetson AGX Xavier", util=10.0)

    def fraction(view: HostView) -> float:
        (slot,) = fleet_from_snapshot(FleetSnapshot((view,))).slots
        return slot.features.power_fraction

    assert fraction(host("j", xavier, kind="jetson", hello=hello_view(power_mode="15W"))) == 0.5
    # The device's own reading wins over the host's; L4T's long names match by their watts.
    named = DeviceReading("gpu0", "jetson", "Jetson AGX Xavier", power_mode="MODE_10W")
    assert fraction(host("j", named, kind="jetson", hello=hello_view(power_mode="15W"))) == (
        pytest.approx(1 / 3)
    )
    # No mode reported: MAXN, the default.
    assert fraction(host("j", xavier, kind="jetson", hello=hello_view())) == 1.0
    a100 = DeviceReading("gpu0", "gpu", "A100-SXM4-40GB")
    assert fraction(host("g", a100, hello=hello_view(power_mode="whatever"))) == 1.0


def test_live_co_runner_columns_from_the_running_deployments() -> None:
    """A server deployment's rate is its measured throughput and its batch time its p50 less
    the LAN transfer (ResNet-50: 0.5 ms RTT + 1.2 ms per 8-bit 224x224 image); an offline
    one is a closed loop; a stopped one is not there."""
    cpu = DeviceReading("cpu", "cpu", util=60.0, mem_used=4 << 30, mem_total=32 << 30)

    def transfer(batch: int) -> float:
        return 0.5 + batch * 3 * 224 * 224 * 8 / 1e6

    deployments = (
        DeploymentReading("s", "running", "resnet50", 1, "server", p50_ms=50.0 + transfer(1),
                          throughput=10.0),
        DeploymentReading("o", "running", "resnet50", 4, "offline", p50_ms=200.0 + transfer(4),
                          throughput=20.0),
        DeploymentReading("x", "stopped", "resnet50", 1, "server", p50_ms=1.0, throughput=9.0),
    )  # fmt: skip
    view = host("box", cpu, kind="cpu", hello=hello_view(), deployments=deployments)
    fleet = fleet_from_snapshot(FleetSnapshot((view,)), catalog=load_catalog())
    (slot,) = fleet.slots
    f = slot.features
    assert f.colocated == 2
    assert f.corunner_open_load == pytest.approx(10.0 * 50.0 / 1000.0)
    assert (f.corunner_closed, f.corunner_closed_ms) == (1, pytest.approx(200.0))
    # Weights: the open one its load (0.5), the closed loop what is left (0.5).
    assert f.corunner_weighted_ms == pytest.approx((0.5 * 50.0 + 0.5 * 200.0) / 1.0)
