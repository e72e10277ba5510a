"""The pipeline's tensor wire format: round trips, and hostile or broken headers refused."""

from __future__ import annotations

import asyncio
import struct

import pytest
import torch

from edgetop.remote import tensorwire as tw


def roundtrip(state: object, limits: tw.Limits = tw.DEFAULT_LIMITS) -> tw.Message:
    return tw.decode(tw.encode(tw.REQUEST, 7, state, limits), limits)


@pytest.mark.parametrize(
    "tensor",
    [
        torch.randn(2, 3, 4),
        torch.randn(5).half(),
        torch.randn(3, 3).bfloat16(),
        torch.randn(2).double(),
        torch.arange(10, dtype=torch.int64).reshape(2, 5),
        torch.tensor([1, -2, 3], dtype=torch.int32),
        torch.tensor([1, -2], dtype=torch.int16),
        torch.tensor([-1, 2], dtype=torch.int8),
        torch.tensor([0, 255], dtype=torch.uint8),
        torch.tensor([True, False]),
        torch.tensor(3.5),  # zero dims
        torch.empty(0, 4),  # zero elements
        torch.randn(4, 6)[:, ::2],  # not contiguous
    ],
)
def test_a_tensor_comes_back_equal(tensor: torch.Tensor) -> None:
    out = roundtrip(tensor)
    assert out.kind == tw.REQUEST and out.request_id == 7
    assert out.state.dtype == tensor.dtype and out.state.shape == tensor.shape
    assert torch.equal(out.state, tensor)


def test_a_tuple_state_stays_a_tuple_even_of_one() -> None:
    pair = (torch.randn(2, 8), torch.ones(2, 1, 1, 8))
    out = roundtrip(pair).state
    assert isinstance(out, tuple) and all(torch.equal(a, b) for a, b in zip(out, pair, strict=True))
    single = roundtrip((torch.ones(3),)).state
    assert isinstance(single, tuple) and len(single) == 1
    assert isinstance(roundtrip(torch.ones(3)).state, torch.Tensor)


def test_messages_without_tensors_and_errors() -> None:
    assert tw.decode(tw.encode(tw.PING, 1)).state is None
    err = tw.decode(tw.error_message(9, "stage 1 failed: boom"))
    assert err.kind == tw.ERROR and err.request_id == 9
    assert tw.error_text(err) == "stage 1 failed: boom"


def test_decoded_tensors_own_their_memory() -> None:
    data = bytearray(tw.encode(tw.RESULT, 1, torch.zeros(4)))
    out = tw.decode(bytes(data)).state
    out += 1  # writable, and not tied to the message buffer
    assert torch.equal(out, torch.ones(4))


@pytest.mark.parametrize(
    "state, limits, error",
    [
        (torch.randn(2).to(torch.complex64), tw.DEFAULT_LIMITS, "complex64 is not sendable"),
        ({"x": torch.ones(1)}, tw.DEFAULT_LIMITS, "not dict"),
        ((torch.ones(1), 3), tw.DEFAULT_LIMITS, "state item 1 is int"),
        (tuple(torch.ones(1) for _ in range(3)), tw.Limits(max_tensors=2), "3 tensors"),
        (torch.ones([1] * 5), tw.Limits(max_ndim=4), "5 dims"),
        (torch.ones(100), tw.Limits(max_bytes=100), "exceeds the limit of 100"),
    ],
)
def test_unsendable_states_are_refused_before_sending(
    state: object, limits: tw.Limits, error: str
) -> None:
    with pytest.raises(tw.WireError, match=error):
        tw.encode(tw.REQUEST, 1, state, limits)


def header(**fields: int | bytes) -> bytes:
    values = {"magic": tw.MAGIC, "version": 1, "kind": 1, "flags": 0, "count": 1}
    values.update(reserved=0, rid=1)
    values.update(fields)
    return tw.HEADER.pack(*values.values())


def tensor_head(code: int = 1, dims: tuple[int, ...] = (2,)) -> bytes:
    return tw.TENSOR_HEAD.pack(code, len(dims)) + b"".join(tw.DIM.pack(d) for d in dims)


@pytest.mark.parametrize(
    "data, error",
    [
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "bad magic"),
        (header(version=9) + tensor_head() + bytes(8), "unsupported wire version 9"),
        (header(kind=77) + tensor_head() + bytes(8), "unknown message kind 77"),
        (header(flags=0x80) + tensor_head() + bytes(8), "unknown flags 0x80"),
        (header(reserved=5) + tensor_head() + bytes(8), "reserved field is 5"),
        (header(count=200), "200 tensors announced"),
        (header(count=2) + tensor_head() * 2 + bytes(16), "without the tuple flag"),
        (header() + tensor_head(code=42) + bytes(8), "unknown dtype code 42"),
        (header() + struct.pack("!BB", 1, 200), "200 dims"),
        (header() + tensor_head(dims=(1 << 40,)), "dim 0 is"),
        # every dim within bounds, the product far past any memory
        (header() + tensor_head(dims=(1 << 30, 1 << 30, 1 << 30)), "past the limit"),
        (header() + tensor_head(dims=(4,)) + bytes(8), "truncated payload: 8 of 16"),
        (header() + tensor_head() + bytes(9), "1 bytes after the message"),
        (header(count=1), "tensor 0 is missing"),
        (header() + struct.pack("!BB", 1, 3) + tw.DIM.pack(2), "shape is cut short"),
        (header()[:10], "header is 10 bytes"),
    ],
)
def test_hostile_and_broken_messages_are_refused_by_name(data: bytes, error: str) -> None:
    with pytest.raises(tw.WireError, match=error):
        tw.decode(data)


def feed(data: bytes, eof: bool = True) -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    if eof:
        reader.feed_eof()
    return reader


async def test_stream_reads_messages_one_after_another() -> None:
    a, b = torch.randn(1, 3, 8, 8), (torch.randn(2), torch.arange(3))
    reader = feed(tw.encode(tw.REQUEST, 1, a) + tw.encode(tw.RESULT, 2, b))
    first, second = await tw.read_message(reader), await tw.read_message(reader)
    assert first.request_id == 1 and torch.equal(first.state, a)
    assert second.kind == tw.RESULT and torch.equal(second.state[1], b[1])
    with pytest.raises(EOFError):
        await tw.read_message(reader)


async def test_stream_truncated_inside_a_message_is_a_wire_error() -> None:
    data = tw.encode(tw.REQUEST, 1, torch.randn(16))
    for cut in (5, tw.HEADER.size + 1, len(data) - 1):
        with pytest.raises(tw.WireError, match="connection closed inside"):
            await tw.read_message(feed(data[:cut]))


async def test_stream_refuses_an_oversized_header_before_reading_the_payload() -> None:
    # Nothing but the header arrives and the stream stays open: a reader that trusted the
    # header would wait for (or allocate) 64 GiB; this one refuses at once.
    reader = feed(header() + tensor_head(dims=(1 << 17, 1 << 17, 4)), eof=False)
    with pytest.raises(tw.WireError, match="past the limit"):
        await asyncio.wait_for(tw.read_message(reader, tw.Limits()), 5)


async def test_write_message_over_a_socket() -> None:
    got: list[tw.Message] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        got.append(await tw.read_message(reader))
        await tw.write_message(writer, tw.encode(tw.RESULT, got[0].request_id, got[0].state * 2))
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    x = torch.randn(3, 4)
    await tw.write_message(writer, tw.encode(tw.REQUEST, 5, x))
    answer = await tw.read_message(reader)
    writer.close()
    server.close()
    await server.wait_closed()
    assert answer.request_id == 5 and torch.allclose(answer.state, x * 2)
