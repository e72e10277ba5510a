"""`hosts check`: what each host runs, and where the fleet has drifted apart. Pure."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from edgetop.core.fleet import HostView
from edgetop.remote.protocol import Hello

# Facts compared across hosts of the same kind; a mismatch is worth an operator's look.
DRIFT_FACTS: dict[str, Callable[[Hello], str | None]] = {
    "agent": lambda h: h.agent,
    "python": lambda h: h.python,
    "nvidia driver": lambda h: h.nvidia_driver,
    "cuda": lambda h: h.cuda,
    "l4t": lambda h: h.l4t,
}


@dataclass(frozen=True)
class Drift:
    kind: str
    fact: str
    majority: str
    outliers: tuple[tuple[str, str], ...]  # (host, its value)

    def __str__(self) -> str:
        odd = ", ".join(f"{host} has {value}" for host, value in self.outliers)
        return f"{self.kind} hosts: {self.fact} is {self.majority} on most, but {odd}"


def version_drift(hosts: Sequence[HostView]) -> list[Drift]:
    """Facts that differ among reachable hosts of one kind (simulated hosts are skipped)."""
    drifts: list[Drift] = []
    real = [h for h in hosts if h.hello is not None and h.transport != "sim"]
    for kind in sorted({h.kind for h in real}):
        group = [h for h in real if h.kind == kind]
        for fact, read in DRIFT_FACTS.items():
            values = {h.name: v for h in group if h.hello and (v := read(h.hello)) is not None}
            counts = Counter(values.values())
            if len(counts) < 2:
                continue
            # Ties break on the value itself so the report is stable from run to run.
            majority = max(sorted(counts), key=lambda v: counts[v])
            outliers = tuple(sorted((n, v) for n, v in values.items() if v != majority))
            drifts.append(Drift(kind, fact, majority, outliers))
    return drifts


def platform_summary(hello: Hello) -> str:
    """Driver / JetPack line for one host."""
    parts = []
    if hello.nvidia_driver:
        cuda = f", CUDA {hello.cuda}" if hello.cuda else ""
        parts.append(f"driver {hello.nvidia_driver}{cuda}")
    if hello.l4t:
        jetpack = f" (JetPack {hello.jetpack})" if hello.jetpack else ""
        parts.append(f"L4T {hello.l4t}{jetpack}")
    return "; ".join(parts) or "no NVIDIA stack"
