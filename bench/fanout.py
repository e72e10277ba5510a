"""Telemetry fan-out benchmark: one controller, N agents at 1 Hz over N real SSH connections.

    sudo python bench/fanout.py --hosts 50 200 --seconds 30 [--json FILE] [--profile FILE]

For each N this starts ONE OpenSSH sshd on a loopback address (the cgroup testbed in
tests/testbed.py, with limits generous enough never to throttle), writes a hosts.toml with N
[[host]] entries that all point at it, and runs `FleetMonitor` in this process. Once every host
has delivered two samples it measures, over `--seconds`:

- controller: CPU time of this process (`time.process_time()`) / wall time, as % of one core
  (the process does nothing else during the window), samples received vs N x seconds, bad
  lines, and the controller's RSS;
- agents: CPU time (/proc/<pid>/task/*/schedstat, exact; utime+stime where schedstats are
  off) and VmRSS of every `edgetop-agent` process in the sshd's cgroup, read at the start and
  end of the window -> mean and max CPU % and RSS per agent;
- sshd: the same for the per-connection sshd processes (OpenSSH's cost, not edgetop's).

Prints a markdown table (and the machine it ran on); `--json` also writes every number, and
`--profile` cProfiles the controller over an extra window (so the table stays unprofiled).
Needs root (sshd, cgroup writes) and pytest (tests/testbed.py imports it), like the testbed
tests. Results and their reading: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from edgetop.core.config import parse_config
from edgetop.core.fleet import FleetSnapshot
from edgetop.core.monitor import FleetMonitor
from edgetop.remote.link import HostStatus, LinkEvent

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from testbed import SSHD, OpenSSHTestbed, testbed_unavailable_reason  # noqa: E402

GIB = 1 << 30
SSHD_CORES = 2.0  # cgroup quota of the one sshd host: generous, so nothing is throttled
SSHD_MEM = 20 * GIB
INTERVAL_S = 1.0
CLK_TCK = os.sysconf("SC_CLK_TCK")

# Targets from the task brief.
CONTROLLER_CPU_TARGET = 25.0  # % of one core, at 200 hosts
AGENT_CPU_TARGET = 1.0  # % of one core, per agent at 1 Hz
AGENT_RSS_TARGET_MB = 30.0


class BenchError(RuntimeError):
    """The fleet did not come up, so there is nothing to measure."""


def ready_timeout(hosts: int) -> float:
    """How long all hosts may take to deliver two samples (connection storms take a while)."""
    return 30.0 + 0.5 * hosts


# --------------------------------------------------------------------------------------------
# /proc readings


@dataclass(frozen=True)
class ProcReading:
    pid: int
    cpu_s: float  # CPU time used so far, user + system
    rss_kib: int


def _cpu_seconds(pid: int) -> float:
    """CPU time used so far by every thread of a process, user + system."""
    try:
        # Nanoseconds on the CPU, exact; utime/stime are sampled at the tick (1/CLK_TCK s),
        # too coarse for a process that wakes for a millisecond once a second.
        return sum(
            int((task / "schedstat").read_text().split()[0]) / 1e9
            for task in Path(f"/proc/{pid}/task").iterdir()
        )
    except FileNotFoundError:
        raise  # the process (or one thread) went away: the caller skips it
    except OSError:  # a kernel without schedstats
        stat = Path(f"/proc/{pid}/stat").read_text()
        # comm (field 2) may contain spaces and parentheses: split after the last ')'.
        fields = stat[stat.rindex(")") + 2 :].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def _read_proc(pid: int) -> ProcReading | None:
    """CPU time and RSS of a process, or None if it went away meanwhile."""
    try:
        cpu_s = _cpu_seconds(pid)
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    rss_kib = 0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            rss_kib = int(line.split()[1])
            break
    return ProcReading(pid, cpu_s, rss_kib)


def _cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


def classify(pids: list[int]) -> dict[str, list[int]]:
    """Split the processes of the sshd cgroup into agents, sshd sessions and the rest."""
    groups: dict[str, list[int]] = {"agent": [], "sshd": [], "listener": [], "other": []}
    for pid in pids:
        cmd = _cmdline(pid)
        if "[listener]" in cmd or cmd.startswith(f"{SSHD} -D"):  # accepts and forks
            groups["listener"].append(pid)
        elif "edgetop-agent" in cmd:
            groups["agent"].append(pid)
        elif cmd.startswith("sshd:"):  # "sshd: root@notty", "sshd: root [priv]"
            groups["sshd"].append(pid)
        else:
            groups["other"].append(pid)
    return groups


def read_all(pids: list[int]) -> dict[int, ProcReading]:
    readings = {}
    for pid in pids:
        reading = _read_proc(pid)
        if reading is not None:
            readings[pid] = reading
    return readings


@dataclass(frozen=True)
class GroupCost:
    """CPU and memory of a group of processes that lived through the whole window."""

    processes: int
    cpu_total_pct: float  # all of them together, % of one core
    cpu_mean_pct: float  # per process
    cpu_max_pct: float
    rss_mean_mb: float
    rss_max_mb: float
    rss_total_mb: float


def group_cost(
    before: dict[int, ProcReading], after: dict[int, ProcReading], wall_s: float
) -> GroupCost:
    common = sorted(before.keys() & after.keys())  # processes that lived through the window
    if not common:
        return GroupCost(0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    cpu = [100.0 * (after[p].cpu_s - before[p].cpu_s) / wall_s for p in common]
    rss = [after[p].rss_kib / 1024 for p in common]
    return GroupCost(
        processes=len(common),
        cpu_total_pct=sum(cpu),
        cpu_mean_pct=sum(cpu) / len(cpu),
        cpu_max_pct=max(cpu),
        rss_mean_mb=sum(rss) / len(rss),
        rss_max_mb=max(rss),
        rss_total_mb=sum(rss),
    )


def machine_busy_s() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, all cores, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle, iowait
    total = sum(values[:8])  # user .. steal; guest time is already counted in user
    return (total - idle) / CLK_TCK, total / CLK_TCK


def own_rss_mb() -> float:
    reading = _read_proc(os.getpid())
    return reading.rss_kib / 1024 if reading else 0.0


# --------------------------------------------------------------------------------------------
# One run


@dataclass
class Counters:
    """What the controller received, tallied by a FleetMonitor listener."""

    samples: int = 0
    bad_lines: int = 0
    statuses: Counter[str] = field(default_factory=Counter)

    def __call__(self, _snapshot: FleetSnapshot, event: LinkEvent) -> None:
        if event.sample is not None:
            self.samples += 1
        elif event.bad_line is not None:
            self.bad_lines += 1
        elif event.hello is None:  # a status change: connecting, offline, stale
            self.statuses[event.status.value] += 1


@dataclass
class Result:
    hosts: int
    seconds: float  # the measured window, wall
    connect_s: float  # start -> every host had two samples
    connect_cpu_s: float  # controller CPU spent meanwhile (handshakes, agent uploads)
    connect_failures: int  # offline / auth / host-key events before all were ready
    controller_cpu_pct: float  # % of one core
    controller_us_per_sample: float  # controller CPU per received sample
    controller_rss_mb: float
    samples: int
    samples_per_s: float
    expected_per_s: float
    bad_lines: int
    window_status_events: dict[str, int]  # connecting / offline / stale during the window
    agent: GroupCost
    sshd: GroupCost  # per-connection sshd processes (2 per connection with privsep)
    sshd_listener_cpu_pct: float
    other_processes: int
    machine_busy_pct: float  # every core of the machine, % of one core: shows contention


def hosts_toml(address: str, port: int, identity: Path, known_hosts: Path, count: int) -> str:
    def quote(value: object) -> str:
        return json.dumps(str(value))  # a JSON string is a valid TOML basic string

    width = max(3, len(str(count)))
    blocks = [
        "\n".join(
            [
                "[[host]]",
                f"name = {quote(f'h{i:0{width}d}')}",
                f"address = {quote(address)}",
                f"port = {port}",
                'user = "root"',
                f"identity = {quote(identity)}",
                f"known_hosts = {quote(known_hosts)}",
                'transport = "ssh"',
                f"python = {quote(sys.executable)}",
                f"interval = {INTERVAL_S}",
            ]
        )
        for i in range(1, count + 1)
    ]
    return "\n\n".join(blocks) + "\n"


def _failures(counters: Counters) -> int:
    failed = (HostStatus.OFFLINE, HostStatus.AUTH_FAILED, HostStatus.HOST_KEY_REJECTED)
    return sum(counters.statuses[s.value] for s in failed)


async def run_one(
    count: int, seconds: float, workdir: Path, profile: cProfile.Profile | None
) -> Result:
    testbed = OpenSSHTestbed(workdir, [(SSHD_CORES, SSHD_MEM)])
    try:
        (tb,) = testbed.start()
        text = hosts_toml(tb.address, tb.port, tb.identity, tb.known_hosts, count)
        config = parse_config(text, workdir / "hosts.toml")
        monitor = FleetMonitor(config)
        counters = Counters()
        monitor.subscribe(counters)
        started, connect_cpu0 = time.monotonic(), time.process_time()
        await monitor.start()
        try:
            ready = await monitor.wait_for(
                lambda s: all(h.samples >= 2 for h in s.hosts), ready_timeout(count)
            )
            connect_s = time.monotonic() - started
            connect_cpu_s = time.process_time() - connect_cpu0
            if not ready:
                late = [h for h in monitor.snapshot.hosts if h.samples < 2]
                reasons = Counter(f"{h.status.value}: {h.reason}" for h in late)
                raise BenchError(
                    f"{len(late)} of {count} hosts not streaming after {connect_s:.0f} s: "
                    f"{dict(reasons.most_common(5))}; sshd log:\n{testbed.log(tb.name)[-2000:]}"
                )
            connect_failures = _failures(counters)
            await asyncio.sleep(2 * INTERVAL_S)  # let the connection storm's backlog drain

            groups = classify(testbed.pids(tb.name))
            watched = groups["agent"] + groups["sshd"] + groups["listener"]
            procs_before = read_all(watched)
            proc_t0 = time.monotonic()

            samples0, bad0 = counters.samples, counters.bad_lines
            statuses0 = Counter(counters.statuses)
            busy0, _ = machine_busy_s()
            cpu0, wall0 = time.process_time(), time.monotonic()
            await asyncio.sleep(seconds)
            cpu1, wall1 = time.process_time(), time.monotonic()
            busy1, _ = machine_busy_s()
            samples, bad = counters.samples - samples0, counters.bad_lines - bad0
            statuses = counters.statuses - statuses0

            procs_after = read_all(watched)
            proc_wall = time.monotonic() - proc_t0
            if profile is not None:  # a second window: the profiler's overhead stays out
                profile.enable()
                await asyncio.sleep(seconds)
                profile.disable()
            wall = wall1 - wall0
            split = {
                group: {pid: procs_before[pid] for pid in pids if pid in procs_before}
                for group, pids in groups.items()
            }
            listener_cost = group_cost(split["listener"], procs_after, proc_wall)
            return Result(
                hosts=count,
                seconds=wall,
                connect_s=connect_s,
                connect_cpu_s=connect_cpu_s,
                connect_failures=connect_failures,
                controller_cpu_pct=100.0 * (cpu1 - cpu0) / wall,
                controller_us_per_sample=1e6 * (cpu1 - cpu0) / max(samples, 1),
                controller_rss_mb=own_rss_mb(),
                samples=samples,
                samples_per_s=samples / wall,
                expected_per_s=count / INTERVAL_S,
                bad_lines=bad,
                window_status_events=dict(statuses),
                agent=group_cost(split["agent"], procs_after, proc_wall),
                sshd=group_cost(split["sshd"], procs_after, proc_wall),
                sshd_listener_cpu_pct=listener_cost.cpu_total_pct,
                other_processes=len(groups["other"]),
                machine_busy_pct=100.0 * (busy1 - busy0) / wall,
            )
        finally:
            await monitor.stop()
    finally:
        testbed.close()


# --------------------------------------------------------------------------------------------
# Reporting


def machine() -> dict[str, str | int]:
    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return {
        "nproc": os.cpu_count() or 0,
        "cpu_model": model,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "openssh": _openssh_version(),
    }


def _openssh_version() -> str:
    out = subprocess.run([str(SSHD), "-V"], capture_output=True, text=True)
    return (out.stderr or out.stdout).strip().split(",")[0]


def table(results: list[Result]) -> str:
    head = [
        "hosts",
        "controller CPU % (1 core)",
        "controller µs/sample",
        "controller RSS MB",
        "samples/s (expected)",
        "bad lines",
        "agent CPU % mean / max",
        "agent RSS MB mean / max",
        "sshd CPU % per conn (total)",
        "machine busy % (all cores)",
        "connect s (controller CPU s)",
    ]
    rows = [
        [
            str(r.hosts),
            f"{r.controller_cpu_pct:.1f}",
            f"{r.controller_us_per_sample:.0f}",
            f"{r.controller_rss_mb:.0f}",
            f"{r.samples_per_s:.1f} ({r.expected_per_s:.0f})",
            str(r.bad_lines),
            f"{r.agent.cpu_mean_pct:.2f} / {r.agent.cpu_max_pct:.2f}",
            f"{r.agent.rss_mean_mb:.1f} / {r.agent.rss_max_mb:.1f}",
            f"{r.sshd.cpu_total_pct / max(r.hosts, 1):.2f} ({r.sshd.cpu_total_pct:.1f})",
            f"{r.machine_busy_pct:.0f}",
            f"{r.connect_s:.1f} ({r.connect_cpu_s:.1f})",
        ]
        for r in results
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def verdicts(results: list[Result]) -> list[str]:
    out = []
    for r in results:
        ok = "met" if r.controller_cpu_pct < CONTROLLER_CPU_TARGET else "NOT met"
        out.append(
            f"{r.hosts} hosts: controller {r.controller_cpu_pct:.1f}% "
            f"(target < {CONTROLLER_CPU_TARGET:.0f}% at 200 hosts: {ok}); "
            f"agent CPU max {r.agent.cpu_max_pct:.2f}% (< {AGENT_CPU_TARGET}%: "
            f"{'met' if r.agent.cpu_max_pct < AGENT_CPU_TARGET else 'NOT met'}); "
            f"agent RSS max {r.agent.rss_max_mb:.1f} MB (< {AGENT_RSS_TARGET_MB:.0f} MB: "
            f"{'met' if r.agent.rss_max_mb < AGENT_RSS_TARGET_MB else 'NOT met'}); "
            f"{r.agent.processes} agents, {r.sshd.processes} sshd session processes, "
            f"{r.other_processes} other; connect failures {r.connect_failures}; "
            f"window events {r.window_status_events or 'none'}"
        )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, nargs="+", default=[50, 200], metavar="N")
    parser.add_argument("--seconds", type=float, default=30.0, help="measured window per N")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write results here")
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="FILE",
        help="for the largest N, cProfile the controller over a second window (pstats file)",
    )
    args = parser.parse_args(argv)
    reason = testbed_unavailable_reason()
    if reason is not None:
        print(f"cannot run: {reason}", file=sys.stderr)
        return 2
    if any(n < 1 for n in args.hosts):
        parser.error("--hosts: every N must be at least 1")

    info = machine()
    results: list[Result] = []
    largest = max(args.hosts)
    for count in args.hosts:
        profile = cProfile.Profile() if args.profile and count == largest else None
        with tempfile.TemporaryDirectory(prefix=f"edgetop-fanout-{count}-") as tmp:
            print(f"# {count} hosts: connecting ...", file=sys.stderr, flush=True)
            try:
                result = asyncio.run(run_one(count, args.seconds, Path(tmp), profile))
            except BenchError as exc:
                print(f"{count} hosts: {exc}", file=sys.stderr)
                return 1
        results.append(result)
        print(f"# {count} hosts: done ({result.samples_per_s:.1f} samples/s)", file=sys.stderr)
        if profile is not None:
            profile.dump_stats(args.profile)

    print(
        f"Machine: {info['nproc']} CPUs, {info['cpu_model']}, Python {info['python']}, "
        f"Linux {info['kernel']}, {info['openssh']}; window {args.seconds:g} s, "
        f"interval {INTERVAL_S:g} s\n",
        flush=True,
    )
    print(table(results), flush=True)
    print()
    for line in verdicts(results):
        print(f"- {line}")
    if args.json:
        payload = {
            "machine": info,
            "seconds": args.seconds,
            "results": [asdict(r) for r in results],
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
