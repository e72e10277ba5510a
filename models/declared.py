"""Declared models: workloads that are not torch (a Triton or custom server), declared in a
`workloads.toml` with a launch command and their features.

    [[model]]
    name = "resnet-triton"                 # like a catalog name; must not shadow one
    family = "conv"                        # one of the zoo's FAMILIES
    launch = ["tritonserver", "--model-repository", "/models"]   # argv; omit if already running
    query = ["curl", "-sf", "http://127.0.0.1:8000/v2/models/resnet/ready"]  # ONE request
    batch_arg = "--batch={batch}"          # optional: appended to query ({batch} also allowed
                                           # inside query's own arguments)
    query_timeout_s = 30                   # optional (default 30)
    start_timeout_s = 60                   # optional: how long the server may take to answer
    params = 25557032
    gflops = 8.18                          # per sample (2 FLOPs per MAC)
    activation_bytes = 110000000           # peak live activations, one sample
    input_shape = [[1, 3, 224, 224]]       # per input, batch dimension 1 first
    # param_bytes (default 4 * params), activation_traffic_bytes (default activation_bytes),
    # input_bytes (default 4 bytes per input element) are optional.

The worker starts `launch` as its child (own process group, stopped with the worker) and times
each run of `query` as one query: argv, no shell, `{batch}` replaced by the batch size, exit
status 0 is success. The process start-up cost of `query` is part of every measured latency,
so this suits servers whose latencies are well above a few milliseconds. The worker makes no
memory check for a declared model (it cannot see what the server allocates).

`parse_declarations(text, path, reserved)` is pure; `load_workloads(explicit, cwd)` finds and
reads the file (`--workloads FILE`, else ./workloads.toml; none is fine: no declared models).
Errors are `DeclarationError`s naming the file, the `[[model]]` table and the key. Parsing
needs the controller's Python (tomllib, 3.11, imported in `parse_declarations` only); the
module is shipped with the models package (importable on 3.8) but the worker never uses it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgetop.models.errors import ModelError
from edgetop.models.workload import WorkloadFeatures

WORKLOADS_FILE = "workloads.toml"
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")
# The zoo's families (models/zoo.py FAMILIES; repeated here so that no torch is imported).
FAMILIES = ("conv", "transformer", "recommender", "detector", "language-model", "custom")
BATCH_PLACEHOLDER = "{batch}"
MAX_ARGS = 256
MAX_ARG_CHARS = 4096
DEFAULT_QUERY_TIMEOUT_S = 30.0
DEFAULT_START_TIMEOUT_S = 60.0
FLOAT32_BYTES = 4
GIGA = 1e9

_KEYS = {
    "name", "family", "launch", "query", "batch_arg", "query_timeout_s", "start_timeout_s",
    "params", "gflops", "activation_bytes", "input_shape", "param_bytes",
    "activation_traffic_bytes", "input_bytes",
}  # fmt: skip


class DeclarationError(ModelError):
    """Bad workloads file. str() is one line: "path: [[model]] #n 'name', key 'k': message"."""

    def __init__(
        self,
        path: str | Path,
        message: str,
        *,
        index: int | None = None,
        name: str | None = None,
        key: str | None = None,
    ) -> None:
        self.path, self.index, self.name, self.key = str(path), index, name, key
        self.message = message
        where = []
        if index is not None:
            where.append(f"[[model]] #{index}" + (f" {name!r}" if name else ""))
        if key is not None:
            where.append(f"key {key!r}")
        prefix = f"{self.path}: " + (", ".join(where) + ": " if where else "")
        super().__init__(prefix + message)


@dataclass(frozen=True)
class DeclaredModel:
    name: str
    family: str
    launch: tuple[str, ...]
    query: tuple[str, ...]
    params: int
    gflops: float  # per sample
    activation_bytes: int
    input_shape: tuple[tuple[int, ...], ...]
    param_bytes: int
    activation_traffic_bytes: int
    input_bytes: int
    query_timeout_s: float = DEFAULT_QUERY_TIMEOUT_S
    start_timeout_s: float = DEFAULT_START_TIMEOUT_S

    def features(self) -> WorkloadFeatures:
        """As models/features.py computes them, from the declared numbers."""
        flops = self.gflops * GIGA
        moved = self.param_bytes + self.input_bytes + self.activation_traffic_bytes
        return WorkloadFeatures(
            name=self.name,
            family=self.family,
            params=self.params,
            param_bytes=self.param_bytes,
            gflops=self.gflops,
            activation_bytes=self.activation_bytes,
            activation_traffic_bytes=self.activation_traffic_bytes,
            input_shape=self.input_shape,
            input_bytes=self.input_bytes,
            arithmetic_intensity=flops / moved if moved else math.nan,
        )

    def worker_fields(self) -> dict[str, Any]:
        """The worker spec's `declared` field."""
        return {
            "launch": list(self.launch),
            "query": list(self.query),
            "query_timeout_s": self.query_timeout_s,
            "start_timeout_s": self.start_timeout_s,
        }


class _Table:
    def __init__(self, path: str, index: int, raw: Mapping[str, Any]) -> None:
        self.path, self.index, self.raw = path, index, raw
        name = raw.get("name")
        self.name = name if isinstance(name, str) else None

    def error(self, key: str | None, message: str) -> DeclarationError:
        return DeclarationError(self.path, message, index=self.index, name=self.name, key=key)

    def int_(self, key: str, default: int | None = None, *, positive: bool = False) -> int:
        value = self.raw.get(key, default)
        if value is None:
            raise self.error(key, "is required")
        if not isinstance(value, int) or isinstance(value, bool) or value < (1 if positive else 0):
            raise self.error(key, f"must be a{' positive' if positive else ' non-negative'} "
                             f"integer, got {value!r}")  # fmt: skip
        return value

    def number(self, key: str, default: float | None = None, *, positive: bool = False) -> float:
        value = self.raw.get(key, default)
        if value is None:
            raise self.error(key, "is required")
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not ok or not math.isfinite(value) or value < 0 or (positive and value == 0):
            raise self.error(key, f"must be a {'positive' if positive else 'non-negative'} "
                             f"number, got {value!r}")  # fmt: skip
        return float(value)

    def argv(self, key: str, *, required: bool) -> tuple[str, ...]:
        value = self.raw.get(key, [])
        if not isinstance(value, list):
            raise self.error(key, "must be a list of strings (an argv, run without a shell), "
                             f"not a {type(value).__name__}")  # fmt: skip
        if required and not value:
            raise self.error(key, "must name a program (a non-empty list)")
        if len(value) > MAX_ARGS:
            raise self.error(key, f"has more than {MAX_ARGS} arguments")
        for i, arg in enumerate(value):
            if not isinstance(arg, str):
                raise self.error(key, f"argument {i} must be a string, got {arg!r}")
            if not arg and i == 0:
                raise self.error(key, "the program (argument 0) is empty")
            if len(arg) > MAX_ARG_CHARS or any(ord(c) < 32 and c != "\t" for c in arg):
                raise self.error(key, f"argument {i} is too long or has control characters")
        return tuple(value)


def _model(table: _Table, reserved: Iterable[str]) -> DeclaredModel:
    raw = table.raw
    unknown = sorted(set(raw) - _KEYS)
    if unknown:
        raise table.error(unknown[0], f"unknown key (known: {', '.join(sorted(_KEYS))})")
    name = raw.get("name")
    if name is None:
        raise table.error("name", "is required")
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise table.error("name", f"{name!r} must match {NAME_RE.pattern}")
    if name in set(reserved):
        raise table.error("name", f"{name!r} is a catalog model; pick another name")
    family = raw.get("family")
    if family not in FAMILIES:
        raise table.error("family", f"{family!r} is not one of {', '.join(FAMILIES)}")
    launch = table.argv("launch", required=False)
    query = table.argv("query", required=True)
    batch_arg = raw.get("batch_arg")
    if batch_arg is not None:
        if not isinstance(batch_arg, str) or BATCH_PLACEHOLDER not in batch_arg:
            raise table.error("batch_arg", f"must be a string containing {BATCH_PLACEHOLDER}")
        query = (*query, batch_arg)
    shape = raw.get("input_shape")
    if (
        not isinstance(shape, list)
        or not shape
        or not all(
            isinstance(s, list)
            and s
            and all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in s)
            for s in shape
        )
    ):
        raise table.error("input_shape", "must be a non-empty list of lists of positive integers")
    if any(s[0] != 1 for s in shape):
        raise table.error("input_shape", "each input's first (batch) dimension must be 1")
    input_shape = tuple(tuple(s) for s in shape)
    params = table.int_("params")
    activation_bytes = table.int_("activation_bytes")
    elements = sum(math.prod(s) for s in input_shape)
    return DeclaredModel(
        name=name,
        family=family,
        launch=launch,
        query=query,
        params=params,
        gflops=table.number("gflops"),
        activation_bytes=activation_bytes,
        input_shape=input_shape,
        param_bytes=table.int_("param_bytes", FLOAT32_BYTES * params),
        activation_traffic_bytes=table.int_("activation_traffic_bytes", activation_bytes),
        input_bytes=table.int_("input_bytes", FLOAT32_BYTES * elements),
        query_timeout_s=table.number("query_timeout_s", DEFAULT_QUERY_TIMEOUT_S, positive=True),
        start_timeout_s=table.number("start_timeout_s", DEFAULT_START_TIMEOUT_S, positive=True),
    )


def parse_declarations(
    text: str, path: str | Path = WORKLOADS_FILE, reserved: Iterable[str] = ()
) -> dict[str, DeclaredModel]:
    """The declared models of a workloads file's text, by name (pure: no file, no torch)."""
    # The controller's Python only (3.11): this module is shipped with the zoo but never
    # imported on a host, so the 3.11 import stays here, out of the hosts' way.
    import tomllib  # novermin

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise DeclarationError(path, f"not valid TOML: {exc}") from None
    extra = sorted(set(data) - {"model"})
    if extra:
        raise DeclarationError(path, f"unknown top-level key {extra[0]!r}; expected [[model]]")
    tables = data.get("model", [])
    if not isinstance(tables, list):
        raise DeclarationError(path, "'model' must be an array of tables: write [[model]]")
    reserved = frozenset(reserved)
    out: dict[str, DeclaredModel] = {}
    for index, raw in enumerate(tables, 1):
        if not isinstance(raw, dict):
            raise DeclarationError(path, "must be a table", index=index)
        model = _model(_Table(str(path), index, raw), reserved)
        if model.name in out:
            raise DeclarationError(
                path, f"{model.name!r} is declared twice", index=index, name=model.name, key="name"
            )
        out[model.name] = model
    return out


def find_workloads_file(explicit: Path | None = None, cwd: Path | None = None) -> Path | None:
    """`--workloads FILE` (which must exist), else ./workloads.toml if there is one."""
    if explicit is not None:
        return Path(explicit)
    candidate = (cwd or Path.cwd()) / WORKLOADS_FILE
    return candidate if candidate.is_file() else None


def load_workloads(
    explicit: Path | None = None, cwd: Path | None = None, reserved: Iterable[str] | None = None
) -> dict[str, DeclaredModel]:
    """The declared models of `--workloads FILE` or ./workloads.toml; {} when there is none.
    `reserved` defaults to the shipped catalog's names."""
    path = find_workloads_file(explicit, cwd)
    if path is None:
        return {}
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DeclarationError(path, f"cannot read: {exc}") from None
    if reserved is None:
        from edgetop.models.catalog import load_catalog

        reserved = load_catalog()
    return parse_declarations(text, path, reserved)
