"""Human formatting of readings; "-" stands for a value that is not available."""

from __future__ import annotations

NA = "-"
GIB = 1 << 30


def pct(value: float | None) -> str:
    return NA if value is None else f"{value:.0f}%"


def gib(value: int | None) -> str:
    return NA if value is None else f"{value / GIB:.1f}G"


def size(value: int | None) -> str:
    """Bytes in the largest binary unit that keeps the figure at or above 1."""
    if value is None:
        return NA
    amount = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if amount < 1024 or unit == "GiB":
            return f"{amount:,.0f} {unit}" if unit == "B" else f"{amount:,.1f} {unit}"
        amount /= 1024
    raise AssertionError("unreachable")


def gflops(value: float) -> str:
    return f"{value:,.2f}" if value >= 0.1 else f"{value:.3g}"


def mem(used: int | None, total: int | None) -> str:
    if used is None and total is None:
        return NA
    return f"{gib(used)}/{gib(total)}"


def ms(value: float | None) -> str:
    return NA if value is None else f"{value:,.1f} ms"


def temp(value: float | None) -> str:
    return NA if value is None else f"{value:.0f}°C"


def watts(value: float | None, limit: float | None = None) -> str:
    if value is None:
        return NA
    return f"{value:.0f}W" if limit is None else f"{value:.0f}/{limit:.0f}W"


def quota(cpu_quota: float | None, mem_limit: int | None) -> str:
    cpu = "unlimited" if cpu_quota is None else f"{cpu_quota:g} CPU"
    memory = "" if mem_limit is None else f", {gib(mem_limit)}"
    return cpu + memory


def age(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    if seconds < 90:
        return f"{seconds:.0f}s ago"
    if seconds < 5400:
        return f"{seconds / 60:.0f}m ago"
    return f"{seconds / 3600:.1f}h ago"
