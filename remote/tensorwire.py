"""The pipeline's wire format: tensors as a small fixed header and raw bytes, never pickle.

One message:

    header   !4sBBBBIQ  magic b"EDTW", version 1, kind, flags, count of tensors, reserved
                        (must be 0), request id (u64)
    count x  !BB        dtype code (from DTYPES), ndim; then ndim x !Q dims
    payload             each tensor's bytes, C order, little-endian, one after the other

Kinds: REQUEST (a state going down the pipeline), RESULT (the last stage's output coming
back), ERROR (one uint8 tensor holding UTF-8 text), PING / PONG (no tensors; they travel the
whole pipeline, so a PONG says every stage is alive and connected). Flag TUPLE: the state is a
tuple of tensors (`models/nets/base.py`: a block's state is a tensor or a flat tuple), so a
1-tuple and a lone tensor stay distinct.

Every header field is checked against `Limits` before a byte of payload is read or allocated:
magic, version, kind, flags, reserved, count, dtype, ndim, every dimension and the total size.
A bad header raises `WireError` naming the field; the connection is then unusable (there is no
resynchronisation) and the caller closes it.

Host Python: >= 3.8 (shipped with the stage worker); torch is imported lazily.
"""

from __future__ import annotations

import struct
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Sequence

MAGIC = b"EDTW"
VERSION = 1
HEADER = struct.Struct("!4sBBBBIQ")
TENSOR_HEAD = struct.Struct("!BB")
DIM = struct.Struct("!Q")

REQUEST, RESULT, ERROR, PING, PONG = 1, 2, 3, 4, 5
KINDS = {REQUEST: "request", RESULT: "result", ERROR: "error", PING: "ping", PONG: "pong"}
FLAG_TUPLE = 0x01
KNOWN_FLAGS = FLAG_TUPLE

# code -> (torch dtype name, bytes per element). Codes are part of the format: never reuse one.
DTYPES = {
    1: ("float32", 4),
    2: ("float16", 2),
    3: ("bfloat16", 2),
    4: ("float64", 8),
    5: ("int64", 8),
    6: ("int32", 4),
    7: ("int16", 2),
    8: ("int8", 1),
    9: ("uint8", 1),
    10: ("bool", 1),
}
_CODES = {name: code for code, (name, _) in DTYPES.items()}
MAX_ERROR_CHARS = 4000


class WireError(ValueError):
    """A message breaks the format or the limits; the text says which field and why."""


@dataclass(frozen=True)
class Limits:
    """What a reader accepts. The defaults fit every zoo model's states at batch 64."""

    max_tensors: int = 16
    max_ndim: int = 8
    max_dim: int = 1 << 31
    max_bytes: int = 1 << 30  # payload of one message


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True)
class TensorHead:
    dtype: str
    shape: tuple[int, ...]
    nbytes: int


@dataclass(frozen=True)
class Header:
    kind: int
    flags: int
    request_id: int
    tensors: tuple[TensorHead, ...]

    @property
    def payload_bytes(self) -> int:
        return sum(t.nbytes for t in self.tensors)


@dataclass(frozen=True)
class Message:
    kind: int
    request_id: int
    state: Any = None  # a tensor, a tuple of tensors, or None (no tensors)

    @property
    def kind_name(self) -> str:
        return KINDS.get(self.kind, str(self.kind))


# --------------------------------------------------------------------------------------------
# Encoding
# --------------------------------------------------------------------------------------------


def _tensors_of(state: Any) -> tuple[list[Any], int]:
    import torch

    if state is None:
        return [], 0
    if isinstance(state, torch.Tensor):
        return [state], 0
    if isinstance(state, (tuple, list)):
        for i, item in enumerate(state):
            if not isinstance(item, torch.Tensor):
                raise WireError(f"state item {i} is {type(item).__name__}, not a tensor")
        return list(state), FLAG_TUPLE
    raise WireError(f"a state is a tensor or a tuple of tensors, not {type(state).__name__}")


def _raw(tensor: Any) -> bytes:
    import torch

    flat = tensor.detach().to("cpu").contiguous().reshape(-1)
    if not flat.numel():
        return b""
    if sys.byteorder != "little" and flat.element_size() > 1:  # the wire is little-endian
        return flat.numpy().byteswap().tobytes()
    return flat.view(torch.uint8).numpy().tobytes()


def encode(kind: int, request_id: int, state: Any = None, limits: Limits = DEFAULT_LIMITS) -> bytes:
    """The bytes of one message; WireError if `state` cannot be sent within `limits`."""
    if kind not in KINDS:
        raise WireError(f"unknown message kind {kind}")
    if not 0 <= request_id < 1 << 64:
        raise WireError(f"request id {request_id} is outside 0..2**64-1")
    tensors, flags = _tensors_of(state)
    if len(tensors) > limits.max_tensors:
        raise WireError(f"{len(tensors)} tensors, more than the limit {limits.max_tensors}")
    parts = [HEADER.pack(MAGIC, VERSION, kind, flags, len(tensors), 0, request_id)]
    payload: list[bytes] = []
    for i, tensor in enumerate(tensors):
        name = str(tensor.dtype).replace("torch.", "")
        if name not in _CODES:
            raise WireError(f"tensor {i}: dtype {name} is not sendable ({', '.join(_CODES)})")
        if tensor.dim() > limits.max_ndim:
            raise WireError(f"tensor {i}: {tensor.dim()} dims, more than {limits.max_ndim}")
        parts.append(TENSOR_HEAD.pack(_CODES[name], tensor.dim()))
        parts.extend(DIM.pack(d) for d in tensor.shape)
        payload.append(_raw(tensor))
    total = sum(len(p) for p in payload)
    if total > limits.max_bytes:
        raise WireError(f"payload of {total} bytes exceeds the limit of {limits.max_bytes}")
    return b"".join(parts + payload)


def error_message(request_id: int, text: str) -> bytes:
    import torch

    raw = text[:MAX_ERROR_CHARS].encode("utf-8", "replace")
    return encode(ERROR, request_id, torch.tensor(list(raw), dtype=torch.uint8))


def error_text(message: Message) -> str:
    state = message.state
    if message.kind != ERROR or state is None or isinstance(state, tuple):
        return ""
    return bytes(state.tolist()).decode("utf-8", "replace")


# --------------------------------------------------------------------------------------------
# Decoding: header first, checked field by field, then exactly the payload it announced
# --------------------------------------------------------------------------------------------


def parse_fixed(data: bytes, limits: Limits = DEFAULT_LIMITS) -> tuple[int, int, int, int]:
    """(kind, flags, count, request id) of the fixed header; WireError naming a bad field."""
    if len(data) != HEADER.size:
        raise WireError(f"header is {len(data)} bytes, expected {HEADER.size}")
    magic, version, kind, flags, count, reserved, request_id = HEADER.unpack(data)
    if magic != MAGIC:
        raise WireError(f"bad magic {magic!r}, expected {MAGIC!r} (not an edgetop stage peer?)")
    if version != VERSION:
        raise WireError(f"unsupported wire version {version}, this side speaks {VERSION}")
    if kind not in KINDS:
        raise WireError(f"unknown message kind {kind}")
    if flags & ~KNOWN_FLAGS:
        raise WireError(f"unknown flags 0x{flags:02x}")
    if reserved != 0:
        raise WireError(f"reserved field is {reserved}, must be 0")
    if count > limits.max_tensors:
        raise WireError(f"{count} tensors announced, more than the limit {limits.max_tensors}")
    if flags & FLAG_TUPLE == 0 and count > 1:
        raise WireError(f"{count} tensors announced without the tuple flag")
    return kind, flags, count, request_id


def parse_tensor_head(
    index: int, code: int, dims: Sequence[int], total: int, limits: Limits
) -> TensorHead:
    if code not in DTYPES:
        raise WireError(f"tensor {index}: unknown dtype code {code}")
    name, size = DTYPES[code]
    for axis, dim in enumerate(dims):
        if dim > limits.max_dim:
            raise WireError(f"tensor {index}: dim {axis} is {dim}, more than {limits.max_dim}")
    nbytes = size
    for dim in dims:
        nbytes *= dim
        if nbytes > limits.max_bytes:  # checked as it grows: no huge intermediate products
            break
    if total + nbytes > limits.max_bytes:
        raise WireError(
            f"tensor {index}: shape {tuple(dims)} {name} brings the payload past the limit of "
            f"{limits.max_bytes} bytes"
        )
    return TensorHead(name, tuple(dims), nbytes)


def parse_header(data: bytes, limits: Limits = DEFAULT_LIMITS) -> tuple[Header, int]:
    """A whole header from the start of `data`: (header, bytes it used). WireError when the
    header is bad or `data` ends inside it."""
    kind, flags, count, request_id = parse_fixed(data[: HEADER.size], limits)
    at, heads, total = HEADER.size, [], 0
    for i in range(count):
        if len(data) < at + TENSOR_HEAD.size:
            raise WireError(f"truncated header: tensor {i} is missing")
        code, ndim = TENSOR_HEAD.unpack_from(data, at)
        at += TENSOR_HEAD.size
        if ndim > limits.max_ndim:
            raise WireError(f"tensor {i}: {ndim} dims, more than the limit {limits.max_ndim}")
        if len(data) < at + ndim * DIM.size:
            raise WireError(f"truncated header: tensor {i}'s shape is cut short")
        dims = [DIM.unpack_from(data, at + k * DIM.size)[0] for k in range(ndim)]
        at += ndim * DIM.size
        heads.append(parse_tensor_head(i, code, dims, total, limits))
        total += heads[-1].nbytes
    return Header(kind, flags, request_id, tuple(heads)), at


def build_state(header: Header, payload: bytes) -> Any:
    """Tensors from exactly `header.payload_bytes` of payload (copied: they own their memory)."""
    import torch

    if len(payload) != header.payload_bytes:
        raise WireError(f"payload is {len(payload)} bytes, the header announced "
                        f"{header.payload_bytes}")  # fmt: skip
    tensors, at = [], 0
    for head in header.tensors:
        dtype = getattr(torch, head.dtype)
        chunk = payload[at : at + head.nbytes]
        at += head.nbytes
        if head.nbytes == 0:
            tensors.append(torch.empty(head.shape, dtype=dtype))
            continue
        flat = torch.frombuffer(bytearray(chunk), dtype=torch.uint8).view(dtype)
        if sys.byteorder != "little" and flat.element_size() > 1:
            flat = torch.from_numpy(flat.numpy().byteswap())
        tensors.append(flat.reshape(head.shape))
    if header.flags & FLAG_TUPLE:
        return tuple(tensors)
    return tensors[0] if tensors else None


def decode(data: bytes, limits: Limits = DEFAULT_LIMITS) -> Message:
    """One whole message from `data` (nothing more, nothing less)."""
    header, used = parse_header(data, limits)
    if len(data) < used + header.payload_bytes:
        raise WireError(f"truncated payload: {len(data) - used} of {header.payload_bytes} bytes")
    if len(data) > used + header.payload_bytes:
        raise WireError(f"{len(data) - used - header.payload_bytes} bytes after the message")
    return Message(header.kind, header.request_id, build_state(header, data[used:]))


# --------------------------------------------------------------------------------------------
# asyncio streams (plain sockets, or asyncssh's SSHReader/SSHWriter in bytes mode)
# --------------------------------------------------------------------------------------------


async def _exactly(reader: Any, n: int, what: str) -> bytes:
    import asyncio

    try:
        return await reader.readexactly(n)
    except asyncio.IncompleteReadError as exc:
        if not exc.partial and what == "header":
            raise EOFError("the peer closed the connection") from None
        got = len(exc.partial)
        raise WireError(f"connection closed inside the {what} ({got} of {n} bytes)") from None


async def read_header(reader: asyncio.StreamReader, limits: Limits = DEFAULT_LIMITS) -> Header:
    """The next message's header. EOFError on a clean close between messages."""
    fixed = await _exactly(reader, HEADER.size, "header")
    kind, flags, count, request_id = parse_fixed(fixed, limits)
    heads, total = [], 0
    for i in range(count):
        code, ndim = TENSOR_HEAD.unpack(await _exactly(reader, TENSOR_HEAD.size, "tensor header"))
        if ndim > limits.max_ndim:
            raise WireError(f"tensor {i}: {ndim} dims, more than the limit {limits.max_ndim}")
        raw = await _exactly(reader, ndim * DIM.size, "tensor header") if ndim else b""
        dims = [DIM.unpack_from(raw, k * DIM.size)[0] for k in range(ndim)]
        heads.append(parse_tensor_head(i, code, dims, total, limits))
        total += heads[-1].nbytes
    return Header(kind, flags, request_id, tuple(heads))


async def read_message(reader: asyncio.StreamReader, limits: Limits = DEFAULT_LIMITS) -> Message:
    """The next whole message. EOFError on a clean close between messages; WireError on a
    bad header or a close in the middle of one."""
    header = await read_header(reader, limits)
    payload = await _exactly(reader, header.payload_bytes, "payload") if header.tensors else b""
    return Message(header.kind, header.request_id, build_state(header, payload))


async def write_message(writer: asyncio.StreamWriter, data: bytes) -> None:
    """Send one encoded message and wait until the transport has room again (back-pressure:
    a slow reader on the other end stops the writer here)."""
    writer.write(data)
    await writer.drain()
