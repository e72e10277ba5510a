import contextlib
import json

import pytest
from agentlines import hello, sample
from hypothesis import given
from hypothesis import strategies as st

from edgetop.remote.errors import AgentLineError
from edgetop.remote.protocol import Hello, Sample, parse_line


def test_hello_is_typed() -> None:
    msg = parse_line(hello(nvidia_driver="590.48.01"))
    assert isinstance(msg, Hello)
    assert msg.cpu_quota == 1.5
    assert msg.mem_limit == 1 << 29
    assert msg.nvidia_driver == "590.48.01"
    assert msg.working_collectors == ("procfs",)


def test_sample_keeps_nulls_as_not_available() -> None:
    line = sample(
        3,
        devices=[
            {
                "id": "gpu0",
                "kind": "gpu",
                "util": None,
                "mem_used": 5,
                "mem_total": 10,
                "throttle": ["sw_power_cap"],
                "processes": [{"pid": 7, "name": "burn", "mem_used": 3}],
            }
        ],
    )
    msg = parse_line(line)
    assert isinstance(msg, Sample)
    gpu = msg.devices[0]
    assert gpu.util is None
    assert gpu.mem_fraction == 0.5
    assert gpu.throttle == ("sw_power_cap",)
    assert gpu.processes[0].pid == 7


@pytest.mark.parametrize(
    ("line", "why"),
    [
        (b"not json", "not JSON"),
        (b"[1,2]", "JSON object"),
        (b'{"v": 2, "type": "sample"}', "protocol version"),
        (b'{"v": true, "type": "sample"}', "protocol version"),
        (b'{"v": 1, "type": "bogus"}', "unknown message type"),
        (b'{"v": 1, "type": "sample", "seq": 1}', "without 'seq' or 't'"),
        (b'{"v": 1, "type": "sample", "seq": "x", "t": 1}', "'seq'"),
        (
            b'{"v": 1, "type": "sample", "seq": 1, "t": 1,'
            b' "devices": [{"id": "a", "kind": "tpu"}]}',
            "device kind",
        ),
        (
            b'{"v": 1, "type": "sample", "seq": 1, "t": 1, "devices": [{"id": "a", "kind": "cpu",'
            b' "util": NaN}]}',
            "'util'",
        ),
        (b'{"v": 1, "type": "hello"}', "'agent'"),
    ],
)
def test_bad_lines_say_what_is_wrong(line: bytes, why: str) -> None:
    with pytest.raises(AgentLineError, match=why):
        parse_line(line)


def test_oversized_line_is_rejected_without_parsing() -> None:
    with pytest.raises(AgentLineError, match="exceeds"):
        parse_line(b"x" * (2 << 20))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=20,
)


@given(st.binary(max_size=300))
def test_arbitrary_bytes_never_escape_as_other_errors(raw: bytes) -> None:
    with contextlib.suppress(AgentLineError):
        parse_line(raw)


@given(
    st.dictionaries(
        st.sampled_from(
            [
                "v",
                "type",
                "seq",
                "t",
                "devices",
                "errors",
                "agent",
                "hostname",
                "cgroup",
                "collectors",
                "message",
                "id",
                "kind",
                "util",
            ]
        ),
        json_values,
        max_size=8,
    )
)
def test_structured_garbage_never_escapes(obj: dict) -> None:
    obj.setdefault("v", 1)
    with contextlib.suppress(AgentLineError):
        parse_line(json.dumps(obj))


def _with_deployment(**fields: object) -> bytes:
    return sample(1, deployments=[{"id": "mobilenetv2-1a2b/1", "state": "running", **fields}])


def test_a_pipeline_stage_reading_is_typed() -> None:
    msg = parse_line(_with_deployment(pipeline="mobilenetv2-1a2b", stage=1, blocks="12:20"))
    assert isinstance(msg, Sample)
    d = msg.deployments[0]
    assert (d.pipeline, d.stage, d.blocks) == ("mobilenetv2-1a2b", 1, "12:20")
    worker = parse_line(sample(1, deployments=[{"id": "resnet50-1.1", "state": "running"}]))
    assert isinstance(worker, Sample)
    assert (worker.deployments[0].pipeline, worker.deployments[0].stage) == (None, None)


def test_a_workers_busy_share_is_a_share() -> None:
    msg = parse_line(_with_deployment(busy=0.25))
    assert isinstance(msg, Sample) and msg.deployments[0].busy == 0.25
    for bad in (1.5, -0.1, "0.5", True):
        with pytest.raises(AgentLineError, match="field 'busy'"):
            parse_line(_with_deployment(busy=bad))


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ({"pipeline": 7}, "field 'pipeline': expected a string"),
        ({"pipeline": ["x"]}, "field 'pipeline'"),
        ({"stage": -1}, "field 'stage': expected a non-negative integer"),
        ({"stage": 1.5}, "field 'stage'"),
        ({"stage": True}, "field 'stage'"),
        ({"stage": "0"}, "field 'stage'"),
        ({"blocks": 12}, "field 'blocks': expected a string"),
        ({"blocks": "12-20"}, "field 'blocks': expected 'first:stop'"),
        ({"blocks": "20:12"}, "field 'blocks'"),
        ({"blocks": "3:3"}, "field 'blocks'"),
        ({"blocks": "0:12:20"}, "field 'blocks'"),
        ({"blocks": "١:٢"}, "field 'blocks'"),  # digits, but not ASCII ones
        ({"blocks": "0:99999999999999999999"}, "field 'blocks'"),
    ],
)
def test_hostile_stage_fields_are_refused_by_name(fields: dict[str, object], why: str) -> None:
    with pytest.raises(AgentLineError, match=why):
        parse_line(_with_deployment(**fields))


@given(
    st.dictionaries(
        st.sampled_from(["id", "state", "pipeline", "stage", "blocks", "p50_ms"]),
        json_values,
        max_size=6,
    )
)
def test_garbage_stage_readings_never_escape(obj: dict) -> None:
    with contextlib.suppress(AgentLineError):
        parse_line(sample(1, deployments=[obj]))
