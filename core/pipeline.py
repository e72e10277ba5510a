"""Running a partitioned model as a pipeline of stage processes on real hosts (the I/O edge).

`deploy_pipeline(config, stages, model=...)` starts one `edgetop.remote.stage` per stage on its
host (through the host shell the deployer uses, code shipped into the same versioned cache),
wires stage i to stage i+1 and the controller to stage 0, and returns a `Pipeline`: `infer`
one state, `run` many and measure end-to-end latency and throughput, `dead_stages` to find the
stages that are gone, `recover` to repartition over the hosts that remain and start again,
`close` to stop everything.

Wiring (docs/pipeline.md): every stage listens on 127.0.0.1 of its host. Between two SSH
hosts, stage i's `--next` is a listener that the controller asks host i's sshd to open
(`start_server`, remote forwarding); each connection to it is carried to the controller and
from there, over host i+1's SSH connection (`open_connection`, a direct-tcpip channel), to
stage i+1's port. Tensors therefore pass through the controller (hosts need no keys to each
other, and no port is opened beyond loopback), at the cost of one more hop. A local host and
an SSH host are joined with plain local or remote port forwarding; two stages on one host
connect directly. The controller reaches stage 0 through a local port forward.

Death: a stage that dies closes its connections; the stage above it sends an ERROR up the
chain and the controller's requests fail with `PipelineBroken`. `dead_stages` asks every
host (`--describe`; a host that cannot be reached counts as dead), and `recover` stops the
survivors and deploys a new plan (from `planner`, by default `core.partition` over the
remaining hosts) on the hosts that answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from edgetop.core.config import FleetConfig, HostConfig
from edgetop.core.hostshell import host_python, open_host_shell
from edgetop.core.partition import PartitionPlan, StageDevice, partition
from edgetop.remote import tensorwire as tw
from edgetop.remote.deploy import HostShell, check_torch, code_bundle, ensure_code
from edgetop.remote.errors import EdgetopError
from edgetop.remote.loadgen import SlidingWindow, WindowStats

LOOPBACK = "127.0.0.1"
STATE_DIR = "~/.local/state/edgetop/pipelines"
CACHE_DIR = "~/.cache/edgetop"  # the deployer's code cache (remote/deploy.py)
START_TIMEOUT_S = 180.0
POLL_S = 0.25
REQUEST_TIMEOUT_S = 300.0

# Fixed text: $1 the stage's directory, $2 PYTHONPATH, $3 python, then the stage's arguments
# (each a separate, quoted word). Detached like the worker, so it outlives the SSH session.
LAUNCH_SCRIPT = """\
mkdir -p "$1" && cd "$1" || exit 90
dir="$1"; pp="$2"; py="$3"; shift 3
rm -f status.json pid metrics.jsonl
if command -v setsid >/dev/null 2>&1; then detach=setsid; else detach=nohup; fi
PYTHONPATH="$pp" "$detach" "$py" -m edgetop.remote.stage --dir "$dir" "$@" \
  </dev/null >>stage.log 2>&1 &
"""
STAGE_CMD = 'cd "$1" || exit 90; PYTHONPATH="$1"; export PYTHONPATH; shift; exec "$@"'


class PipelineError(EdgetopError):
    """A pipeline could not be started, driven or recovered; the message says where."""


class PipelineBroken(PipelineError):
    """A stage (or the path to it) went away while requests were in flight."""


@dataclass(frozen=True)
class StageSpec:
    """blocks[first:stop] of the model on `host` (a hosts.toml name)."""

    host: str
    first: int
    stop: int


def stages_of(plan: PartitionPlan) -> tuple[StageSpec, ...]:
    return tuple(StageSpec(s.host, s.first, s.stop) for s in plan.stages)


def equal_split(n_blocks: int, hosts: Sequence[str]) -> tuple[StageSpec, ...]:
    """Blocks spread as evenly as the count allows (hosts beyond the block count get none)."""
    hosts = list(hosts)[:n_blocks]
    if not hosts:
        raise PipelineError("a pipeline needs at least one host and one block")
    bounds = [round(i * n_blocks / len(hosts)) for i in range(len(hosts) + 1)]
    return tuple(StageSpec(h, a, b) for h, a, b in zip(hosts, bounds[:-1], bounds[1:], strict=True))


# --------------------------------------------------------------------------------------------
# Hosts and stages
# --------------------------------------------------------------------------------------------


@dataclass
class _Host:
    config: HostConfig
    shell: HostShell
    conn: Any  # asyncssh connection, None for `local`
    python: str
    code_dir: str = ""
    state_dir: str = ""


@dataclass(frozen=True)
class RunningStage:
    index: int
    spec: StageSpec
    directory: str
    pid: int | None
    port: int
    next: str  # what it was told to connect to


async def _stage_json(host: _Host, *args: str) -> dict[str, Any]:
    argv = ["sh", "-c", STAGE_CMD, "edgetop-stage", host.code_dir, host.python]
    done = await host.shell.run([*argv, "-m", "edgetop.remote.stage", *args])
    try:
        data = json.loads(done.stdout)
    except ValueError:
        raise PipelineError(f"{host.config.name}: unreadable stage answer: {done.tail()}") from None
    if not isinstance(data, dict):
        raise PipelineError(f"{host.config.name}: unreadable stage answer")
    return data


async def _start_stage(
    host: _Host,
    index: int,
    spec: StageSpec,
    model: str,
    options: Mapping[str, Any],
    nxt: str,
    directory: str,
    max_inflight: int,
) -> RunningStage:
    args = ["--model", model, "--first", str(spec.first), "--stop", str(spec.stop)]
    args += ["--listen", f"{LOOPBACK}:0", "--next", nxt, "--max-inflight", str(max_inflight)]
    for key, value in options.items():
        args += ["--option", f"{key}={json.dumps(value)}"]
    launched = await host.shell.run(
        ["sh", "-c", LAUNCH_SCRIPT, "edgetop-stage", directory, host.code_dir, host.python, *args]
    )
    if launched.returncode != 0:
        raise PipelineError(f"{host.config.name}: cannot launch stage {index}: {launched.tail()}")
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        info = await _stage_json(host, "--describe", directory)
        status = info.get("status") or {}
        if info.get("state") == "running" and isinstance(status.get("port"), int):
            return RunningStage(index, spec, directory, info.get("pid"), status["port"], nxt)
        if info.get("state") in ("failed", "dead", "stopped") and status:
            raise PipelineError(
                f"stage {index} ({model} blocks {spec.first}:{spec.stop}) on {host.config.name} "
                f"{info.get('state')}: {info.get('reason')}"
            )
        if time.monotonic() > deadline:
            raise PipelineError(f"stage {index} on {host.config.name} did not start in time")
        await asyncio.sleep(POLL_S)


async def _pipe(reader: Any, writer: Any) -> None:
    try:
        while data := await reader.read(1 << 16):
            writer.write(data)
            await writer.drain()
    except Exception:  # either side failing just ends the pipe
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


def _splice(open_far: Callable[[], Any], tasks: set[asyncio.Task[Any]]) -> Callable[..., Any]:
    """A connection handler carrying each accepted connection to `open_far()`'s end."""

    async def handle(reader: Any, writer: Any) -> None:
        try:
            far_r, far_w = await open_far()
        except Exception:
            writer.close()
            return
        for a, b in ((reader, far_w), (far_r, writer)):
            task = asyncio.ensure_future(_pipe(a, b))
            tasks.add(task)
            task.add_done_callback(tasks.discard)

    return handle


# --------------------------------------------------------------------------------------------
# The client side
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PipelineRun:
    """What `Pipeline.run` measured at the controller: end to end, inputs out to results in."""

    stats: WindowStats
    requests: int
    concurrency: int
    wall_s: float


@dataclass
class _Client:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    pending: dict[int, asyncio.Future[Any]] = field(default_factory=dict)
    ids: int = 0
    task: asyncio.Task[Any] | None = None
    broken: str | None = None

    def start(self) -> None:
        self.task = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        try:
            while True:
                message = await tw.read_message(self.reader)
                future = self.pending.pop(message.request_id, None)
                if message.kind == tw.ERROR and (future is None or message.request_id == 0):
                    self._break(tw.error_text(message))
                    if future is not None:
                        future.set_exception(PipelineBroken(tw.error_text(message)))
                    return
                if future is None or future.done():
                    continue
                if message.kind == tw.ERROR:
                    future.set_exception(PipelineError(tw.error_text(message)))
                else:
                    future.set_result(message.state)
        except Exception as exc:  # EOF, a bad message, OSError, asyncssh's connection errors
            self._break(f"the connection to the first stage ended: {exc or type(exc).__name__}")

    def _break(self, why: str) -> None:
        self.broken = why
        for future in self.pending.values():
            if not future.done():
                future.set_exception(PipelineBroken(why))
        self.pending.clear()

    async def call(self, kind: int, state: Any = None, timeout: float = REQUEST_TIMEOUT_S) -> Any:
        if self.broken:
            raise PipelineBroken(self.broken)
        self.ids += 1
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.pending[self.ids] = future
        await tw.write_message(self.writer, tw.encode(kind, self.ids, state))
        try:
            return await asyncio.wait_for(future, timeout)
        except asyncio.TimeoutError:
            self.pending.pop(self.ids, None)
            raise PipelineBroken(f"no answer within {timeout:g} s") from None

    async def close(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        self.writer.close()


class Pipeline:
    """A started pipeline (see the module doc). Use as `async with` or call `close()`."""

    def __init__(
        self,
        config: FleetConfig,
        model: str,
        options: Mapping[str, Any],
        hosts: dict[str, _Host],
        *,
        accept_new: bool,
        max_inflight: int,
        label: str,
    ) -> None:
        self.config = config
        self.model = model
        self.options = dict(options)
        self.hosts = hosts
        self.accept_new = accept_new
        self.max_inflight = max_inflight
        self.label = label
        self.stages: list[RunningStage] = []
        self._listeners: list[Any] = []
        self._pipes: set[asyncio.Task[Any]] = set()
        self._servers: list[asyncio.AbstractServer] = []
        self._client: _Client | None = None

    async def __aenter__(self) -> Pipeline:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- wiring --------------------------------------------------------------------------------

    async def _link(self, src: str, dst: str, port: int) -> str:
        """The address stage `src` connects to in order to reach `port` on host `dst`."""
        a, b = self.hosts[src], self.hosts[dst]
        if src == dst:
            return f"{LOOPBACK}:{port}"
        if a.conn is None and b.conn is None:
            return f"{LOOPBACK}:{port}"  # both are this machine
        if a.conn is None:  # local -> ssh: local port forwarding over b's connection
            listener = await b.conn.forward_local_port(LOOPBACK, 0, LOOPBACK, port)
        elif b.conn is None:  # ssh -> local: remote port forwarding over a's connection
            listener = await a.conn.forward_remote_port(LOOPBACK, 0, LOOPBACK, port)
        else:  # ssh -> ssh: a's sshd listens, the controller splices onto b's connection
            handler = _splice(lambda: b.conn.open_connection(LOOPBACK, port), self._pipes)
            listener = await a.conn.start_server(lambda _h, _p: handler, LOOPBACK, 0)
        if listener is None:
            raise PipelineError(f"{src}: the SSH server refused port forwarding")
        self._listeners.append(listener)
        return f"{LOOPBACK}:{listener.get_port()}"

    async def _connect_head(self) -> None:
        head = self.stages[0]
        host = self.hosts[head.spec.host]
        if host.conn is None:
            reader, writer = await asyncio.open_connection(LOOPBACK, head.port)
        else:
            reader, writer = await host.conn.open_connection(LOOPBACK, head.port)
        self._client = _Client(reader, writer)
        self._client.start()

    async def start(self, specs: Sequence[StageSpec]) -> None:
        """Start the stages last first, so each knows where its successor listens."""
        if not specs:
            raise PipelineError("a pipeline needs at least one stage")
        started: list[RunningStage] = []
        nxt = "none"
        for index in reversed(range(len(specs))):
            spec = specs[index]
            host = self.hosts[spec.host]
            directory = f"{host.state_dir}/{self.label}/{index}"
            stage = await _start_stage(
                host, index, spec, self.model, self.options, nxt, directory, self.max_inflight
            )
            started.insert(0, stage)
            self.stages = started
            if index > 0:
                nxt = await self._link(specs[index - 1].host, spec.host, stage.port)
        await self._connect_head()

    # -- use -----------------------------------------------------------------------------------

    async def infer(self, state: Any, timeout: float = REQUEST_TIMEOUT_S) -> Any:
        """One request: the model's first state in, its output out."""
        assert self._client is not None, "the pipeline is not started"
        return await self._client.call(tw.REQUEST, state, timeout)

    async def ping(self, timeout: float = 30.0) -> None:
        """Round trip through every stage; PipelineBroken when one is gone."""
        assert self._client is not None, "the pipeline is not started"
        await self._client.call(tw.PING, None, timeout)

    async def run(
        self, state: Any, *, requests: int, concurrency: int = 1, samples: int = 1
    ) -> PipelineRun:
        """`requests` requests with up to `concurrency` in flight (closed loop), timed at the
        controller with loadgen's window: p50/p90/p99 and throughput end to end."""
        window = SlidingWindow(window_s=1e9, max_records=max(1, requests))
        start = time.monotonic()
        window.start(start)
        remaining = list(range(requests))

        async def lane() -> None:
            while remaining:
                remaining.pop()
                t0 = time.monotonic()
                await self.infer(state)
                t1 = time.monotonic()
                window.record(t1, t1 - t0, samples)

        await asyncio.gather(*(lane() for _ in range(max(1, concurrency))))
        end = time.monotonic()
        return PipelineRun(window.stats(end), requests, concurrency, end - start)

    async def describe(self) -> list[dict[str, Any]]:
        """Every stage's `--describe` (its last metrics line included); an unreachable host
        gives {"state": "unreachable", "reason": ...}."""

        async def one(stage: RunningStage) -> dict[str, Any]:
            try:
                return await _stage_json(self.hosts[stage.spec.host], "--describe", stage.directory)
            except (EdgetopError, OSError) as exc:
                return {"state": "unreachable", "alive": False, "reason": str(exc)}

        return list(await asyncio.gather(*(one(s) for s in self.stages)))

    async def dead_stages(self) -> list[int]:
        return [i for i, info in enumerate(await self.describe()) if not info.get("alive")]

    async def recover(
        self, planner: Callable[[Sequence[str]], Sequence[StageSpec]] | None = None
    ) -> Pipeline:
        """Stop this pipeline and start the model again over the hosts whose stages are alive.

        `planner(hosts)` gives the new stages; by default `partition_planner`'s even-compute
        split. Returns the new pipeline (this one is closed)."""
        dead = set(await self.dead_stages())
        if not dead:
            raise PipelineError("no stage is dead; nothing to recover from")
        alive = [s.spec.host for i, s in enumerate(self.stages) if i not in dead]
        dead_hosts = {self.stages[i].spec.host for i in dead}
        hosts = list(dict.fromkeys(h for h in alive if h not in dead_hosts))
        if not hosts:
            raise PipelineError("every stage of the pipeline is dead; no host to repartition on")
        await self.close(keep_hosts=hosts)
        plan = planner or partition_planner(self.model, self.options)
        specs = list(plan(hosts))
        survivor = Pipeline(
            self.config, self.model, self.options, {h: self.hosts[h] for h in hosts},
            accept_new=self.accept_new, max_inflight=self.max_inflight,
            label=f"{self.label}-r{secrets.token_hex(2)}",
        )  # fmt: skip
        try:
            await survivor.start(specs)
        except BaseException:
            await survivor.close()
            raise
        return survivor

    async def stop_stages(self) -> None:
        async def stop(stage: RunningStage) -> None:
            with contextlib.suppress(EdgetopError, OSError):
                await _stage_json(self.hosts[stage.spec.host], "--stop-dir", stage.directory)

        await asyncio.gather(*(stop(s) for s in self.stages))

    async def close(self, keep_hosts: Sequence[str] = ()) -> None:
        """Stop every stage, the forwards and the client; close the hosts' connections
        except those in `keep_hosts` (reused by `recover`)."""
        if self._client is not None:
            await self._client.close()
            self._client = None
        await self.stop_stages()
        for listener in self._listeners:
            listener.close()
        self._listeners.clear()
        for task in list(self._pipes):
            task.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)
        for name, host in self.hosts.items():
            if name in keep_hosts:
                continue
            with contextlib.suppress(Exception):
                await host.shell.close()
            if host.conn is not None:
                host.conn.close()
        self.stages = []


# --------------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------------


def _expand(path: str, home: str) -> str:
    return home + path[1:] if path == "~" or path.startswith("~/") else path


async def _open_host(
    config: FleetConfig, name: str, accept_new: bool, state_dir: str, cache_dir: str
) -> _Host:
    try:
        host_config = config.host(name)
    except (KeyError, ValueError) as exc:
        raise PipelineError(f"no host {name!r} in {config.path}") from exc
    if host_config.transport not in ("ssh", "local"):
        raise PipelineError(f"{name}: a pipeline stage needs an ssh or local host, not sim")
    shell, conn = await open_host_shell(config, host_config, accept_new)
    host = _Host(host_config, shell, conn, host_python(host_config))
    try:
        await check_torch(shell, host.python)
        home = await shell.home()
        host.state_dir = _expand(state_dir, home)
        host.code_dir = await ensure_code(shell, code_bundle(), _expand(cache_dir, home))
    except BaseException:
        await shell.close()
        if conn is not None:
            conn.close()
        raise
    return host


async def deploy_pipeline(
    config: FleetConfig,
    stages: PartitionPlan | Sequence[StageSpec],
    *,
    model: str | None = None,
    options: Mapping[str, Any] | None = None,
    accept_new: bool = False,
    max_inflight: int = 4,
    state_dir: str = STATE_DIR,
    cache_dir: str = CACHE_DIR,
) -> Pipeline:
    """Start `stages` (a plan, or StageSpecs in pipeline order) of `model` (the plan's own by
    default) with build `options` (e.g. {"image_size": 64}); see the module doc. Stage
    directories go under `state_dir`/<label>/<index> on each host, code into `cache_dir`."""
    specs = stages_of(stages) if isinstance(stages, PartitionPlan) else tuple(stages)
    name = model or (stages.model if isinstance(stages, PartitionPlan) else None)
    if not name:
        raise PipelineError("deploy_pipeline needs the model's name")
    hosts: dict[str, _Host] = {}
    try:
        for host_name in dict.fromkeys(s.host for s in specs):
            hosts[host_name] = await _open_host(config, host_name, accept_new, state_dir, cache_dir)
    except BaseException:
        for host in hosts.values():
            await host.shell.close()
            if host.conn is not None:
                host.conn.close()
        raise
    pipeline = Pipeline(
        config, name, options or {}, hosts, accept_new=accept_new, max_inflight=max_inflight,
        label=f"{name.replace(':', '-')}-{secrets.token_hex(4)}",
    )  # fmt: skip
    try:
        await pipeline.start(specs)
    except BaseException:
        await pipeline.close()
        raise
    return pipeline


def partition_planner(
    model: str,
    options: Mapping[str, Any],
    devices: Mapping[str, StageDevice] | None = None,
    objective: str = "throughput",
) -> Callable[[Sequence[str]], Sequence[StageSpec]]:
    """Plans for `recover`: core.partition over the hosts left, with their `devices` when
    known; without them every host counts as equal (1 GFLOP/s, unbounded memory), which
    the exact partitioner turns into the most even split of the FLOPs."""

    def plan(hosts: Sequence[str]) -> Sequence[StageSpec]:
        from edgetop.models.blockcost import block_costs

        blocks = block_costs(model, **dict(options))
        known = devices or {}
        stage_devices = [known.get(h) or StageDevice(h, 1.0, 1 << 50) for h in hosts]
        return stages_of(partition(blocks, stage_devices, objective=objective, model=model))

    return plan


__all__ = [
    "Pipeline",
    "PipelineBroken",
    "PipelineError",
    "PipelineRun",
    "RunningStage",
    "StageSpec",
    "deploy_pipeline",
    "equal_split",
    "partition_planner",
    "stages_of",
]
