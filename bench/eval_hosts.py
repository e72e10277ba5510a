"""`edgetop eval --hosts` on an OpenSSH testbed shaped like AMP4EC's containers.

Three loopback hosts, each a real sshd in its own cgroup: one "high" (1 CPU / 1 GiB) and two
"low" (0.4 CPU / 512 MiB). Profiles the seen models (MobileNetV2, ResNet-50) and the unseen one
(YOLOv5s) at batch 1 and 8 through the real deployer and worker, trains the predictor on the
seen rows, and prints the predictor's and every policy's scores on the unseen model against the
measured latencies. Needs root. Extra arguments go to `edgetop eval`.

    python bench/eval_hosts.py [--duration 10] [--work-dir DIR] [--json out.json] [-- ...]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from testbed import script_testbed  # noqa: E402

from edgetop.tui.cli import main as edgetop  # noqa: E402

MIB = 1 << 20
HOSTS = [(1.0, 1024 * MIB), (0.4, 512 * MIB), (0.4, 512 * MIB)]  # AMP4EC's high, low, low


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds measured per run")
    parser.add_argument("--work-dir", type=Path, help="keep the profile CSV here (resumable)")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("extra", nargs="*", help="more `edgetop eval` arguments")
    args = parser.parse_args()
    with script_testbed(HOSTS, "edgetop-eval-hosts-") as (_, fleet, work):
        argv = ["eval", "--hosts", str(fleet), "--duration", str(args.duration),
                "--work-dir", str(args.work_dir or work / "eval")]  # fmt: skip
        if args.json:
            argv += ["--json", str(args.json)]
        return edgetop([*argv, *args.extra])


if __name__ == "__main__":
    raise SystemExit(main())
