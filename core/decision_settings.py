"""How a placement decision judges devices: headroom on predicted latency, the utilisation cap,
how many candidates, trials. Shared by `recommend`, the neighbour check and `plan_rebalance`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgetop.models.predictor import CONFIDENCE_SCALE

__all__ = ["DEFAULT_SETTINGS", "DecisionSettings"]


@dataclass(frozen=True)
class DecisionSettings:
    """The knobs of `recommend` (and of `plan_rebalance`'s checks); the defaults are the
    product's."""

    margin: float = 0.03  # headroom on predicted p99 at full confidence
    uncertainty: float = 0.15  # extra headroom at zero confidence
    util_cap: float = 0.85  # highest predicted utilisation a device may reach
    top: int = 5  # candidates kept
    check_neighbours: bool = True
    origin: str = "edge"  # where queries come from (the transfer in predicted latency)
    observed_confidence: float = 0.8  # confidence where the model was seen running
    max_scored: int | None = 256  # devices the network scores per decision (None: all)
    # When no device is predicted to meet the SLO with headroom, offer as a trial a device
    # predicted to meet it without the headroom, or, where the ensemble is unsure (confidence
    # under trial_confidence), one whose p99 this many ensemble standard deviations lower
    # meets it: a refusal would learn nothing, the first run's latency settles the question.
    # None: never.
    trial_sigmas: float | None = 1.0
    trial_confidence: float = 0.5

    def headroom(self, confidence: np.ndarray) -> np.ndarray:
        return self.margin + (1.0 - np.clip(confidence, 0.0, 1.0)) * self.uncertainty

    def optimistic(self, p99_ms: np.ndarray, confidence: np.ndarray) -> np.ndarray:
        """The trial bound: p99 that many ensemble spreads lower (the spread read back from
        the confidence, exp(-CONFIDENCE_SCALE x std of log p99))."""
        spread = -np.log(np.clip(confidence, 1e-9, 1.0)) / CONFIDENCE_SCALE
        return p99_ms * np.exp(-(self.trial_sigmas or 0.0) * spread)


DEFAULT_SETTINGS = DecisionSettings()
