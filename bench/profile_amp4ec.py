"""`edgetop profile` on OpenSSH testbed hosts shaped like AMP4EC's containers.

Two loopback hosts, each a real sshd in its own cgroup: 1 CPU / 1 GiB and 0.4 CPU / 512 MiB.
MobileNetV2, ResNet-50 and BERT-base (sequence length 128: at MLPerf's 384 one batch-8 query
takes minutes on 0.4 CPU) at batch 1 and 8, SingleStream, through the real deployer and
worker. Prints a markdown table with the ratio between the two profiles. Needs root.

    python bench/profile_amp4ec.py [--duration 10] [--csv out.csv]
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from testbed import script_testbed  # noqa: E402

from edgetop.tui.cli import main as edgetop  # noqa: E402

MIB = 1 << 20
HOSTS = [(1.0, 1024 * MIB), (0.4, 512 * MIB)]  # AMP4EC's two container shapes
SWEEPS = [("mobilenetv2,resnet50", []), ("bert-base", ["--option", "seq_len=128"])]


def fmt(value: str | None, digits: int = 1) -> str:
    return "-" if not value else f"{float(value):,.{digits}f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds measured per run")
    parser.add_argument("--csv", type=Path, help="keep the profile CSV here")
    args = parser.parse_args()
    with script_testbed(HOSTS) as (hosts, fleet, work):
        out = args.csv or work / "profile.csv"
        for models, extra in SWEEPS:
            edgetop(["profile", "--hosts", str(fleet), "--models", models, "--batch", "1,8",
                     "--duration", str(args.duration), "--out", str(out), *extra])  # fmt: skip
        with out.open(newline="") as handle:
            rows = {(r["host"], r["model"], r["batch"]): r for r in csv.DictReader(handle)}
    big, small = hosts
    print(
        f"\n| model | batch | p50 ms {big.cpu_quota:g} CPU/1 GiB | p50 ms {small.cpu_quota:g} "
        "CPU/512 MiB | p50 ratio | samples/s 1 CPU | samples/s 0.4 CPU | throughput ratio |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for models, _ in SWEEPS:
        for model in models.split(","):
            for batch in ("1", "8"):
                a = rows.get((big.name, model, batch), {})
                b = rows.get((small.name, model, batch), {})
                ratio = f"{float(b['p50_ms']) / float(a['p50_ms']):.2f}x" if a and b else "-"
                tput = f"{float(a['throughput']) / float(b['throughput']):.2f}x" if a and b else "-"
                print(
                    f"| {model} | {batch} | {fmt(a.get('p50_ms'))} | {fmt(b.get('p50_ms'))} | "
                    f"{ratio} | {fmt(a.get('throughput'))} | {fmt(b.get('throughput'))} | "
                    f"{tput} |"
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
