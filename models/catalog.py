"""The workload catalog shipped with the package: features of every zoo model, measured once.

`load_catalog()` reads JSON only (no torch), so scheduling never builds a model. Regenerate
after changing the zoo with `python -m edgetop.models.catalog`; a test fails when it is stale.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from edgetop.models.workload import WorkloadFeatures

CATALOG_PATH = Path(__file__).with_name("catalog.json")
CATALOG_VERSION = 1


class CatalogError(Exception):
    """The shipped catalog is missing, unreadable or of another version."""


def load_catalog(path: Path = CATALOG_PATH) -> Mapping[str, WorkloadFeatures]:
    """The catalog at `path`, read once per version of the file (the interface and `--auto`
    ask for it every round)."""
    try:
        stat = path.stat()
    except OSError as exc:
        raise CatalogError(f"cannot read workload catalog {path}: {exc}") from None
    return _read_catalog(path, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=8)
def _read_catalog(path: Path, mtime_ns: int, size: int) -> Mapping[str, WorkloadFeatures]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise CatalogError(f"cannot read workload catalog {path}: {exc}") from None
    version = data.get("version") if isinstance(data, dict) else None
    if version != CATALOG_VERSION:
        raise CatalogError(
            f"workload catalog {path} is version {version}, expected {CATALOG_VERSION}; "
            "regenerate it with python -m edgetop.models.catalog"
        )
    try:
        return MappingProxyType({m["name"]: WorkloadFeatures.from_dict(m) for m in data["models"]})
    except (KeyError, TypeError, ValueError) as exc:
        raise CatalogError(f"workload catalog {path} is malformed: {exc}") from None


def build_catalog() -> dict[str, Any]:
    """Measure every zoo model (needs torch; meta device, so it takes seconds)."""
    import torch

    from edgetop.models.features import extract
    from edgetop.models.zoo import CATALOG

    return {
        "version": CATALOG_VERSION,
        "source": "measured on torch's meta device by edgetop.models.features.extract",
        "torch": torch.__version__.split("+")[0],
        "models": [extract(spec).to_dict() for spec in CATALOG.values()],
    }


def write_catalog(path: Path = CATALOG_PATH) -> None:
    path.write_text(json.dumps(build_catalog(), indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    write_catalog()
    print(f"wrote {CATALOG_PATH}")
