"""Stage readings from the fleet's hosts grouped into pipelines (pure)."""

from __future__ import annotations

from typing import Any

from agentlines import sample

from edgetop.core.fleet import FleetSnapshot, HostView, apply
from edgetop.core.pipelineview import PipelineView, is_stage, pipelines
from edgetop.remote.link import HostStatus, LinkEvent
from edgetop.remote.protocol import parse_line

LABEL = "mobilenetv2-1a2b3c4d"


def stage(index: int, blocks: str, state: str = "running", **extra: Any) -> dict[str, Any]:
    return {
        "id": f"{LABEL}/{index}",
        "state": state,
        "model": "mobilenetv2",
        "pipeline": LABEL,
        "stage": index,
        "blocks": blocks,
        "p50_ms": 10.0 + index,
        "p99_ms": 20.0 + index,
        "throughput": 100.0 - index,
        **extra,
    }


WORKER = {"id": "resnet50-1.1", "state": "running", "model": "resnet50", "batch": 8}


def fleet(per_host: dict[str, list[dict[str, Any]]], down: tuple[str, ...] = ()) -> FleetSnapshot:
    snap = FleetSnapshot(tuple(HostView(name, "ssh", "cpu", 1.0) for name in per_host))
    for name, deployments in per_host.items():
        line = parse_line(sample(1, deployments=deployments))
        snap = apply(snap, LinkEvent(name, HostStatus.ONLINE, 100.0, sample=line))  # type: ignore[arg-type]
    for name in down:
        snap = apply(snap, LinkEvent(name, HostStatus.OFFLINE, 105.0, reason="connection refused"))
    return snap


def only(snapshot: FleetSnapshot) -> PipelineView:
    (view,) = pipelines(snapshot)
    return view


def test_stages_on_two_hosts_are_one_running_pipeline_with_the_heads_figures() -> None:
    view = only(fleet({"tb2": [stage(1, "12:20"), WORKER], "tb1": [stage(0, "0:12")]}))
    assert view.label == LABEL and view.model == "mobilenetv2"
    assert [(s.host, s.index, s.blocks, s.state) for s in view.stages] == [
        ("tb1", 0, "0:12", "running"),
        ("tb2", 1, "12:20", "running"),
    ]
    assert view.status == "running" and view.reason is None
    assert view.route == "tb1 → tb2"
    assert (view.p50_ms, view.p99_ms, view.throughput) == (10.0, 20.0, 100.0)
    assert view.stages[1].p50_ms == 11.0


def test_workers_alone_make_no_pipeline() -> None:
    snap = fleet({"tb1": [WORKER]})
    assert pipelines(snap) == ()
    assert not is_stage(snap.hosts[0].deployments[0])


def test_a_dead_stage_fails_the_pipeline_with_its_reason() -> None:
    view = only(
        fleet({"tb1": [stage(0, "0:12")], "tb2": [stage(1, "12:20", "dead", reason="gone")]})
    )
    assert view.status == "failed"
    assert view.reason == "stage 1 on tb2 is dead: gone"


def test_a_missing_stage_fails_it_and_a_missing_head_leaves_no_end_to_end_figures() -> None:
    view = only(fleet({"tb2": [stage(1, "8:14")], "tb3": [stage(2, "14:20")]}))
    assert view.status == "failed" and view.reason == "stage 0 not reported by any host"
    assert view.head is None and view.p50_ms is None and view.throughput is None
    assert view.route == "tb2 → tb3"


def test_a_starting_stage_and_an_offline_host() -> None:
    assert only(fleet({"a": [stage(0, "0:12", "starting")], "b": [stage(1, "12:20")]})).status == (
        "starting"
    )
    view = only(fleet({"a": [stage(0, "0:12")], "b": [stage(1, "12:20")]}, down=("b",)))
    assert view.status == "degraded"
    assert view.stages[1].state == "offline"
    assert view.reason == "stage 1 on b is offline: connection refused"


def test_one_machine_under_two_names_reports_each_stage_once() -> None:
    both = [stage(0, "0:12"), stage(1, "12:20")]  # two `local` hosts see one directory
    view = only(fleet({"a": both, "b": both}))
    assert [(s.index, s.hosts) for s in view.stages] == [(0, ("a", "b")), (1, ("a", "b"))]
    assert view.status == "running" and view.route == "a|b → a|b"


def test_pipelines_are_listed_by_label() -> None:
    other = {
        **stage(0, "0:20"),
        "id": "resnet50-ff/0",
        "pipeline": "resnet50-ff",
        "model": "resnet50",
    }
    labels = [v.label for v in pipelines(fleet({"a": [stage(0, "0:12"), other]}))]
    assert labels == [LABEL, "resnet50-ff"]
