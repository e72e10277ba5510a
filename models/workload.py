"""The features of a workload, as the scheduler sees them. Plain data: no torch import, so
the controller reads the shipped catalog without building (or even importing) a model."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class WorkloadFeatures:
    """What the scheduler knows about a workload. Per-sample figures are at batch 1."""

    name: str
    family: str
    params: int
    param_bytes: int
    gflops: float  # per sample (2 FLOPs per MAC)
    activation_bytes: int  # peak live activations for one sample
    activation_traffic_bytes: int  # bytes of every op output for one sample (written once)
    input_shape: tuple[tuple[int, ...], ...]  # per input, batch dimension 1
    input_bytes: int
    arithmetic_intensity: float  # FLOPs per byte moved (weights + activations in and out)

    def activation_bytes_at(self, batch: int) -> int:
        """Activations grow with the batch; weights do not."""
        return self.activation_bytes * batch

    def memory_bytes_at(self, batch: int) -> int:
        """Weights plus live activations plus inputs: what a worker needs beyond the runtime."""
        return self.param_bytes + (self.activation_bytes + self.input_bytes) * batch

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["input_shape"] = [list(s) for s in self.input_shape]
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> WorkloadFeatures:
        values = dict(data)
        values["input_shape"] = tuple(tuple(int(d) for d in s) for s in data["input_shape"])
        return cls(**values)
