from agentlines import hello

from edgetop.core.checks import platform_summary, version_drift
from edgetop.core.fleet import HostView
from edgetop.remote.protocol import Hello, parse_line


def host(name: str, kind: str = "gpu-server", transport: str = "ssh", **facts: object) -> HostView:
    msg = parse_line(hello(hostname=name, **facts))
    assert isinstance(msg, Hello)
    return HostView(name, transport, kind, 1.0, hello=msg)


def test_drift_names_the_odd_host_out() -> None:
    hosts = [
        host("a", nvidia_driver="550.54"),
        host("b", nvidia_driver="550.54"),
        host("c", nvidia_driver="535.129"),
        host("j", kind="jetson", l4t="R35.4.1"),
    ]
    drifts = version_drift(hosts)
    assert len(drifts) == 1
    assert str(drifts[0]) == (
        "gpu-server hosts: nvidia driver is 550.54 on most, but c has 535.129"
    )


def test_no_drift_in_a_uniform_fleet_and_sim_hosts_ignored() -> None:
    hosts = [
        host("a", python="3.10.12"),
        host("b", python="3.10.12"),
        host("s", transport="sim", python="3.12.0"),
    ]
    assert version_drift(hosts) == []


def test_platform_summary() -> None:
    gpu = host("a", nvidia_driver="590.48.01", cuda="13.1").hello
    jetson = host("j", l4t="R36.4.3", jetpack="6.2").hello
    assert gpu is not None and jetson is not None
    assert platform_summary(gpu) == "driver 590.48.01, CUDA 13.1"
    assert platform_summary(jetson) == "L4T R36.4.3 (JetPack 6.2)"
