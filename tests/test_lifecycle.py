import json
import multiprocessing
import os
from pathlib import Path

import pytest

from edgetop.core.lifecycle import (
    Deployment,
    LifecycleError,
    Status,
    Where,
    new_id,
    transition,
    validate_request,
)
from edgetop.core.statestore import Decision, StateError, StateStore, default_state_dir


def pending(id: str = "resnet50-1") -> Deployment:
    return Deployment(id=id, model="resnet50", batch=8, slo_ms=15.0, created=1.0, updated=1.0)


def test_the_happy_path_and_a_move() -> None:
    d = pending()
    d = transition(d, Status.RECOMMENDED, 2.0, "a100-1/gpu0 predicted p99 2.1 ms")
    d = transition(d, Status.STARTING, 3.0, where=Where("a100-1"), worker="w1")
    d = transition(d, Status.RUNNING, 4.0)
    d = transition(d, Status.DEGRADED, 5.0, "p99 21 ms > SLO 15 ms for 3 windows")
    d = transition(d, Status.MOVING, 6.0, moving_to=Where("a100-2"))
    d = transition(d, Status.RUNNING, 7.0, where=Where("a100-2"), moving_to=None, worker="w2")
    assert d.status is Status.RUNNING and d.where == Where("a100-2") and d.worker == "w2"
    assert [s for _, s in d.history] == [
        "recommended", "starting", "running", "degraded", "moving", "running"
    ]  # fmt: skip
    assert d.updated == 7.0 and d.reason is None


@pytest.mark.parametrize(
    "start, bad",
    [
        (Status.PENDING, Status.RUNNING),  # nothing was started
        (Status.RUNNING, Status.PENDING),
        (Status.STOPPED, Status.STARTING),  # a stopped deployment stays stopped
        (Status.STOPPED, Status.STOPPED),
    ],
)
def test_transitions_the_lifecycle_does_not_have_are_refused(start: Status, bad: Status) -> None:
    d = Deployment("x-1", "m", 1, 10.0, status=start)
    if start is bad:
        assert transition(d, bad, 1.0).status is bad  # staying put only updates the record
        return
    with pytest.raises(LifecycleError, match=f"x-1 cannot go from {start.value} to {bad.value}"):
        transition(d, bad, 1.0)


def test_anything_but_stopped_can_be_stopped() -> None:
    for status in Status:
        if status is not Status.STOPPED:
            d = Deployment("x-1", "m", 1, 10.0, status=status)
            assert transition(d, Status.STOPPED, 1.0).status is Status.STOPPED


def test_ids_are_short_unique_and_shell_safe() -> None:
    assert new_id("resnet50", set()) == "resnet50-1"
    assert new_id("resnet50", {"resnet50-1", "resnet50-2"}) == "resnet50-3"
    hostile = new_id("pkg.mod:make; rm -rf / $(x)", set())
    assert hostile.replace("-", "").isalnum() and hostile.endswith("-1")


def test_requests_are_validated_naming_the_field() -> None:
    validate_request("resnet50", 8, 15.0, "server", "latency")
    for args, field in [
        (("", 1, 1.0, "server", "latency"), "model"),
        (("m", 0, 1.0, "server", "latency"), "batch"),
        (("m", 1, -1.0, "server", "latency"), "slo"),
        (("m", 1, 1.0, "burst", "latency"), "scenario"),
        (("m", 1, 1.0, "server", "cheapest"), "objective"),
    ]:
        with pytest.raises(LifecycleError, match=f"^{field}:"):
            validate_request(*args)  # type: ignore[arg-type]


def test_state_round_trips_and_is_written_atomically(tmp_path: Path) -> None:
    store = StateStore(tmp_path / "state")
    assert store.load() == ()
    d = transition(pending(), Status.STARTING, 2.0, where=Where("xavier-1", "gpu0"), worker="w")
    store.save((d, pending("bert-1")))
    assert store.load() == (d, pending("bert-1"))
    # No temporary file is left behind, and the file is whole JSON.
    assert sorted(p.name for p in (tmp_path / "state").iterdir()) == ["deployments.json"]
    json.loads((tmp_path / "state" / "deployments.json").read_text())


def test_a_failed_write_keeps_the_old_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = StateStore(tmp_path)
    store.save((pending(),))

    def torn(*_: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", torn)
    with pytest.raises(StateError, match="No space left"):
        store.save((pending(), pending("b-1")))
    monkeypatch.undo()
    assert store.load() == (pending(),)
    assert [p.name for p in tmp_path.iterdir()] == ["deployments.json"]


@pytest.mark.parametrize(
    "text, words",
    [
        ("{not json", "not valid JSON"),
        ('{"version": 99, "deployments": []}', "state version 99, expected 1"),
        ('{"version": 1, "deployments": {}}', "'deployments' must be a list"),
        ('{"version": 1, "deployments": [{"id": "a"}]}', "deployment 'a' is malformed"),
        ('{"version": 1, "deployments": [{"id": "a", "model": "m", "batch": 1, '
         '"slo_ms": 1, "status": "exploded"}]}', "malformed"),
    ],
)  # fmt: skip
def test_a_corrupt_state_file_is_a_clear_error(tmp_path: Path, text: str, words: str) -> None:
    (tmp_path / "deployments.json").write_text(text)
    with pytest.raises(StateError, match=words) as info:
        StateStore(tmp_path).load()
    assert "deployments.json" in str(info.value)


def _add_many(directory: str, who: int) -> None:
    store = StateStore(Path(directory))
    for i in range(20):
        store.update(lambda ds, i=i: (*ds, pending(f"p{who}-{i}")))


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_add_many, args=(str(tmp_path), w)) for w in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert len(StateStore(tmp_path).load()) == 60


def test_the_audit_log_appends_and_survives_a_torn_line(tmp_path: Path) -> None:
    store = StateStore(tmp_path)
    store.record(Decision("operator", "accept", "resnet50-1", {"to": "a100-1/gpu0"}, 10.0))
    with open(tmp_path / "decisions.jsonl", "a") as f:
        f.write('{"t": 11, "who": "au')  # a power cut mid-append
    store.record(Decision("auto", "move", "resnet50-1", {"from": "a", "to": "b"}, 12.0))
    entries = store.decisions()
    assert [e["action"] for e in entries] == ["accept", "move"]  # the torn line is skipped
    assert entries[0] == {"t": 10.0, "who": "operator", "action": "accept",
                          "deployment": "resnet50-1", "to": "a100-1/gpu0"}  # fmt: skip


def test_default_state_dir_follows_xdg(tmp_path: Path) -> None:
    assert default_state_dir({"XDG_STATE_HOME": "/srv/state"}) == Path("/srv/state/edgetop")
    assert default_state_dir({"XDG_STATE_HOME": "rel"}, tmp_path) == (
        tmp_path / ".local/state/edgetop"
    )
    assert default_state_dir({}, tmp_path) == tmp_path / ".local/state/edgetop"
