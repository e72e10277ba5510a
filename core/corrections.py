"""Observed latencies correct later predictions, per (model, device).

The network predicts from features; a particular device may be slower than its features say
(another tenant, a worse cooling slot, a driver). Each observation moves a multiplicative
correction towards observed / predicted, as an EWMA in log space (ratios average
geometrically), bounded so one wild measurement cannot make a device look 100x faster.
A device never observed with a model borrows the correction of its group (same profile), and
an observation also stands for confidence: the decision needs less headroom where the model
has been seen running. A device also keeps a correction per batch size: the network's error
on a model can change with the batch (GPT-2 on an A100 in the simulated fleet: 1.0x at batch
2, 1.8x at 32), so a batch observed on the device takes its own factor. Its group borrows only
the model's over all batches: spreading one batch's observation over a profile group cost 1.6
points of success at high load in `edgetop eval` (docs/eval.md). A pure value: `observe`
returns a new `Corrections`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np

DEFAULT_ALPHA = 0.3  # weight of each later observation: smooths noise, follows drift
DEFAULT_BOUND = 4.0  # the correction stays within [1/4, 4] times the prediction


QUANTILES = ("p50", "p99")


# Table key: (model, batch, quantile); batch None is the model over every batch.
_Key = tuple[str, int | None, str]


@dataclass(frozen=True)
class Corrections:
    """(model, batch, quantile) -> device key ("host/device") -> log correction factor.

    p50 and p99 are corrected apart: a device can be right on the median and wrong on the
    tail (or the other way round), and the median also feeds the utilisation estimate."""

    table: Mapping[_Key, Mapping[str, float]] = field(default_factory=lambda: MappingProxyType({}))
    alpha: float = DEFAULT_ALPHA
    bound: float = DEFAULT_BOUND

    def log_factor(
        self, model: str, device: str, quantile: str = "p99", batch: int | None = None
    ) -> float:
        """The device's own correction: of this batch if observed at it, else the model's."""
        if batch is not None:
            own = self.table.get((model, batch, quantile), {})
            if device in own:
                return own[device]
        return self.table.get((model, None, quantile), {}).get(device, 0.0)

    def factor(
        self, model: str, device: str, quantile: str = "p99", batch: int | None = None
    ) -> float:
        return math.exp(self.log_factor(model, device, quantile, batch))

    def factors(
        self,
        model: str,
        keys: Mapping[str, int],
        n: int,
        quantile: str = "p99",
        groups: Sequence[str] | None = None,
        batch: int | None = None,
    ) -> np.ndarray:
        """Factors for every device of a fleet (`keys`: device key -> position), vectorised:
        only the devices this model was observed on are touched. With `groups` (a name per
        device, e.g. its profile), a device never observed takes the geometric mean of the
        observed devices of its group: two A100s tend to be wrong the same way. With `batch`,
        a device observed at that batch takes its own correction for it."""
        out = np.ones(n)
        entries = self.table.get((model, None, quantile), {})
        direct = {keys[k]: lf for k, lf in entries.items() if k in keys}
        if groups is not None and direct:
            sums: dict[str, list[float]] = {}
            for i, lf in direct.items():
                sums.setdefault(groups[i], []).append(lf)
            means = {g: math.exp(sum(v) / len(v)) for g, v in sums.items()}
            for i, g in enumerate(groups):
                if g in means:
                    out[i] = means[g]
        for i, lf in direct.items():
            out[i] = math.exp(lf)
        if batch is not None:
            for k, lf in self.table.get((model, batch, quantile), {}).items():
                if k in keys:
                    out[keys[k]] = math.exp(lf)
        return out

    def observed(
        self, model: str, keys: Mapping[str, int], n: int, groups: Sequence[str] | None = None
    ) -> np.ndarray:
        """Devices with an observation of this model, on them or (with `groups`) on a device
        of their group."""
        seen = {
            keys[k] for q in QUANTILES for k in self.table.get((model, None, q), {}) if k in keys
        }
        out = np.zeros(n, dtype=bool)
        if not seen:
            return out
        out[list(seen)] = True
        if groups is not None:
            named = {groups[i] for i in seen}
            out |= np.array([g in named for g in groups], dtype=bool)
        return out

    def observe(
        self,
        model: str,
        device: str,
        predicted_ms: float,
        observed_ms: float,
        quantile: str = "p99",
        batch: int | None = None,
    ) -> Corrections:
        """Fold in one observation, into the model's correction and (with `batch`) the
        batch's. `predicted_ms` is the network's raw (uncorrected) figure. The first
        observation of a pair is taken whole (there is nothing to smooth against)."""
        if quantile not in QUANTILES:
            raise ValueError(f"quantile {quantile!r}: one of {', '.join(QUANTILES)}")
        if not (predicted_ms > 0 and observed_ms > 0):
            return self
        if not (math.isfinite(predicted_ms) and math.isfinite(observed_ms)):
            return self
        limit = math.log(self.bound)
        target = min(max(math.log(observed_ms / predicted_ms), -limit), limit)
        table = dict(self.table)
        batches = [None] if batch is None else [None, batch]
        for key in [(model, b, quantile) for b in batches]:
            per_device = dict(table.get(key, {}))
            old = per_device.get(device)
            new = target if old is None else (1 - self.alpha) * old + self.alpha * target
            per_device[device] = new
            table[key] = MappingProxyType(per_device)
        return Corrections(MappingProxyType(table), self.alpha, self.bound)
