"""Pipeline stages as real processes on 127.0.0.1: same outputs as the whole model, errors and
back-pressure over the wire, describe/stop."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from edgetop.models.zoo import get_model
from edgetop.remote import stage as stage_mod
from edgetop.remote import tensorwire as tw

MODEL, OPTIONS = "mobilenetv2", ["image_size=64"]


class Proc:
    def __init__(self, args: list[str], directory: Path | None = None) -> None:
        extra = ["--dir", str(directory)] if directory else []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", stage_mod.MODULE, *args, *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if not line:
            raise AssertionError(f"stage did not start: {self.proc.communicate()[1][-2000:]}")
        self.port = json.loads(line)["listening"]

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(30)


def start(first: int, stop: int, nxt: Proc | None, *extra: str, directory: Path | None = None):
    opts = [a for o in OPTIONS for a in ("--option", o)]
    args = ["--model", MODEL, "--first", str(first), "--stop", str(stop), *opts, *extra]
    args += ["--next", f"127.0.0.1:{nxt.port}" if nxt else "none"]
    return Proc(args, directory)


@pytest.fixture
def two_stages(tmp_path: Path) -> Iterator[tuple[Proc, Proc]]:
    last = start(8, 20, None, directory=tmp_path / "s1")
    head = start(0, 8, last, "--max-inflight", "2", directory=tmp_path / "s0")
    try:
        yield head, last
    finally:
        for p in (head, last):
            p.stop()


def whole_model(batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    spec = get_model(MODEL)
    (x,) = spec.make_input(batch, image_size=64)
    with torch.inference_mode():
        return x, spec.build(image_size=64)(x)


async def ask(port: int, messages: list[bytes]) -> list[tw.Message]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for data in messages:
        await tw.write_message(writer, data)
    answers = [await asyncio.wait_for(tw.read_message(reader), 120) for _ in messages]
    writer.close()
    return answers


async def test_two_stage_pipeline_equals_the_whole_model(two_stages: tuple[Proc, Proc]) -> None:
    head, _ = two_stages
    x, expected = whole_model(2)
    # More requests than the head may hold at once: back-pressure must not lose or reorder one.
    answers = await ask(head.port, [tw.encode(tw.REQUEST, i, x) for i in range(5)])
    assert [a.request_id for a in answers] == list(range(5))
    for answer in answers:
        assert answer.kind == tw.RESULT
        assert torch.allclose(answer.state, expected, atol=1e-5)


async def test_ping_travels_the_whole_pipeline(two_stages: tuple[Proc, Proc]) -> None:
    (pong,) = await ask(two_stages[0].port, [tw.encode(tw.PING, 42)])
    assert pong.kind == tw.PONG and pong.request_id == 42


async def test_a_bad_request_comes_back_as_an_error_naming_the_stage(
    two_stages: tuple[Proc, Proc],
) -> None:
    (answer,) = await ask(two_stages[0].port, [tw.encode(tw.REQUEST, 3, torch.ones(1, 5, 8, 8))])
    assert answer.kind == tw.ERROR and answer.request_id == 3
    assert "stage [mobilenetv2 0:8]" in tw.error_text(answer)


async def test_garbage_from_upstream_is_refused_by_name(two_stages: tuple[Proc, Proc]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", two_stages[0].port)
    writer.write(b"GET / HTTP/1.1\r\nHost: example\r\n\r\n")
    answer = await asyncio.wait_for(tw.read_message(reader), 60)
    assert answer.kind == tw.ERROR and "bad magic" in tw.error_text(answer)
    assert await reader.read() == b""  # and the session is closed


async def test_a_dead_next_stage_is_reported_upstream(two_stages: tuple[Proc, Proc]) -> None:
    head, last = two_stages
    reader, writer = await asyncio.open_connection("127.0.0.1", head.port)
    await tw.write_message(writer, tw.encode(tw.PING, 1))
    assert (await asyncio.wait_for(tw.read_message(reader), 60)).kind == tw.PONG
    last.proc.kill()
    answer = await asyncio.wait_for(tw.read_message(reader), 60)
    assert answer.kind == tw.ERROR and "closed the connection" in tw.error_text(answer)


def test_describe_stop_and_metrics(two_stages: tuple[Proc, Proc], tmp_path: Path) -> None:
    head, last = two_stages
    asyncio.run(ask(head.port, [tw.encode(tw.REQUEST, 1, whole_model(1)[0])]))
    info = stage_mod.describe(tmp_path / "s0")
    assert info["alive"] and info["state"] == "running" and info["status"]["port"] == head.port
    assert info["status"]["next"] == f"127.0.0.1:{last.port}"
    last.proc.kill()
    last.proc.wait(30)
    dead = stage_mod.describe(tmp_path / "s1")
    assert dead["state"] == "dead" and not dead["alive"]
    stopped = stage_mod.stop_stage(tmp_path / "s0")
    assert not stopped["alive"] and stopped["state"] == "stopped"
    assert head.proc.wait(30) == 0
    lines = (tmp_path / "s0" / "metrics.jsonl").read_text().splitlines()
    last_line = json.loads(lines[-1])
    assert last_line["total_queries"] == 1 and last_line["compute_p50_ms"] > 0
    assert {"p50_ms", "p99_ms", "throughput", "queue_depth", "inflight"} <= set(last_line)


@pytest.mark.parametrize(
    "args, error",
    [
        (["--model", "x y", "--first", "0", "--stop", "1"], "invalid model name"),
        (["--model", MODEL, "--first", "3", "--stop", "3"], "empty"),
        (["--model", MODEL, "--first", "0", "--stop", "1", "--next", "nowhere"], "HOST:PORT"),
        (["--model", MODEL, "--first", "0"], "required"),
        (["--model", MODEL, "--first", "0", "--stop", "1", "--option", "1=2"], "key=value"),
    ],
)
def test_bad_arguments_exit_2_naming_the_problem(
    args: list[str], error: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert stage_mod.main(args) == 2
    assert error in capsys.readouterr().err


def test_too_many_blocks_fails_the_stage(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", stage_mod.MODULE, "--model", MODEL, "--first", "0", "--stop",
         "99", "--dir", str(tmp_path)],
        capture_output=True, text=True, timeout=120, env={**os.environ},
    )  # fmt: skip
    assert done.returncode == 1 and "has 20 blocks" in done.stderr
    assert stage_mod.describe(tmp_path)["state"] == "failed"


async def test_a_stage_that_cannot_send_on_stops_reading_from_upstream(tmp_path: Path) -> None:
    """Back-pressure: a next stage that never reads. The stage must hold at most
    --max-inflight requests and stop reading, so the sender blocks instead of the stage
    buffering without bound."""
    accepted: list[asyncio.StreamWriter] = []

    async def never_reads(_r: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    sink = await asyncio.start_server(never_reads, "127.0.0.1", 0)
    sink_port = sink.sockets[0].getsockname()[1]
    opts = [a for o in OPTIONS for a in ("--option", o)]
    head = Proc(
        ["--model", MODEL, "--first", "0", "--stop", "1", *opts, "--max-inflight", "1",
         "--metrics-interval", "0.2", "--next", f"127.0.0.1:{sink_port}"],
        tmp_path / "s0",
    )  # fmt: skip
    x = whole_model(1)[0]
    total, sent = 1000, 0  # 49 MB of requests: far more than the socket buffers hold
    _, writer = await asyncio.open_connection("127.0.0.1", head.port)

    async def send() -> None:
        nonlocal sent
        data = tw.encode(tw.REQUEST, 1, x)
        for _ in range(total):
            await tw.write_message(writer, data)
            sent += 1

    sender = asyncio.ensure_future(send())
    try:
        last, still = -1, 0
        for _ in range(120):  # until the sender has made no progress for 3 polls in a row
            await asyncio.sleep(0.5)
            still = still + 1 if sent == last else 0
            last = sent
            if still >= 3 or sender.done():
                break
        assert not sender.done() and sent < total
        lines = (tmp_path / "s0" / "metrics.jsonl").read_text().splitlines()
        assert lines and all(json.loads(line)["inflight"] <= 1 for line in lines)
    finally:
        sender.cancel()
        writer.close()
        head.stop()
        sink.close()
        for w in accepted:
            w.close()
