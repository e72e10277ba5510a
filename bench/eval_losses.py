"""Where the learned policy loses in the simulated evaluation, judged on the fleet it saw.

    python bench/eval_losses.py [--loads light,medium,high] [--seeds 0,1,2]

Runs `edgetop eval`'s streams (default fleet, 1,000 requests per run) with the shipped
weights, and asks the oracle, at every decision, what it would do on the same fleet state
(the oracle's own run drifts to other states, so comparing the two runs request by request
says little). Each feasible request after the warm-up that the learned policy did not serve
within its SLO is counted as one of:

- violated: placed, and its p99 (or a neighbour's) went past the bound;
- refused, oracle too: no device could take it in that state (earlier placements' doing);
- refused: <check>: the oracle would have used a device; the check is what the learned policy
  said of that device (busy: the utilisation cap; neighbour: a resident pushed past its SLO;
  p99: the request's own predicted p99; other: memory, roofline bound, not scored).

Prints the counts per load, seen and unseen models apart (docs/scheduler-model.md, 6.1).
"""

from __future__ import annotations

import argparse
import collections
from typing import Any

from edgetop.core.evaluation import EvalConfig, make_stream, simulate
from edgetop.core.placement import Fleet, Recommendation, Request
from edgetop.core.policies import OraclePolicy
from edgetop.core.profiles import get_profile
from edgetop.core.recommend import LearnedPolicy
from edgetop.models.catalog import load_catalog
from edgetop.models.predictor import load_default

_CHECKS = (("would push", "neighbour"), ("would be", "busy"), ("predicted", "p99"))


class _Judged(LearnedPolicy):
    """The learned policy, recording beside each decision the oracle's on the same fleet."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.oracle = OraclePolicy()
        self.log: list[tuple[Recommendation, Recommendation]] = []

    def decide(self, request: Request, fleet: Fleet) -> Recommendation:
        rec = super().decide(request, fleet)
        self.log.append((rec, self.oracle.decide(request, fleet)))
        return rec


def _check(reason: str) -> str:
    return next((name for prefix, name in _CHECKS if reason.startswith(prefix)), "other")


def _loads(text: str) -> list[str]:
    names = [n for n in text.split(",") if n]
    known = dict(EvalConfig().loads)
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"{text!r}: loads are a comma-separated list of {', '.join(known)}"
        )
    return names


def _seeds(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in text.split(",")]
    except ValueError:
        seeds = []
    if not seeds or min(seeds) < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: seeds are whole numbers >= 0, e.g. 0,1,2")
    return seeds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loads", type=_loads, default="light,medium,high")
    parser.add_argument("--seeds", type=_seeds, default="0,1,2")
    args = parser.parse_args()
    config = EvalConfig()
    catalog = load_catalog()
    predictor = load_default()
    profiles = [get_profile(p) for p in config.fleet]
    warmup = config.warmup_lifetimes * config.mean_lifetime_s
    print(f"predictor {predictor.version}; seeds {args.seeds}")
    for load_name in args.loads:
        load = dict(config.loads)[load_name]
        total: collections.Counter[str] = collections.Counter()
        served: collections.Counter[str] = collections.Counter()
        lost: collections.Counter[tuple[str, str]] = collections.Counter()
        for seed in args.seeds:
            stream = make_stream(config, catalog, seed, load)
            policy = _Judged(predictor)
            outcomes = simulate(policy, stream, profiles, catalog, config.origin)
            for out, (rec, oracle) in zip(outcomes, policy.log, strict=True):
                a = out.arrival
                if a.t < warmup or not a.feasible:
                    continue
                group = "unseen" if a.unseen else "seen"
                total[group] += 1
                served[group] += out.success
                if out.success:
                    continue
                if out.placed:
                    lost[(group, "violated")] += 1
                elif oracle.chosen is None:
                    lost[(group, "refused, oracle too")] += 1
                else:
                    where = (oracle.chosen.host, oracle.chosen.device)
                    said = [r.reason for r in rec.rejected if (r.host, r.device) == where]
                    reason = said[0] if said else ""
                    lost[(group, f"refused: {_check(reason)}")] += 1
        print(f"\n## {load_name}")
        for group in ("seen", "unseen"):
            share = served[group] / total[group] if total[group] else float("nan")
            print(f"{group}: served {served[group]} of {total[group]} feasible ({share:.1%})")
            for (g, why), n in sorted(lost.items(), key=lambda kv: -kv[1]):
                if g == group:
                    print(f"  {n:4d}  {why}")


if __name__ == "__main__":
    main()
