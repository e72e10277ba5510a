#!/usr/bin/env bash
# Install edgetop with its test dependencies, then lint and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install -q --disable-pip-version-check torch==2.13.0
python3 -m pip install -q --disable-pip-version-check -e ".[dev]"
python3 -m ruff check .
python3 -m pytest -q -p no:cacheprovider "$@"
