#!/usr/bin/env bash
# Install edgetop and start it on the repository's default fleet (no SSH or GPU needed).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q --disable-pip-version-check torch==2.13.0
python3 -m pip install -q --disable-pip-version-check -e .
exec edgetop --hosts hosts.toml "$@"
