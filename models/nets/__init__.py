"""Pure-torch definitions of the zoo's networks, one module per architecture.

No torchvision, no downloads: every network is written out here and initialised randomly
(the zoo seeds the initialisation, see `edgetop.models.zoo`). `base` holds `ZooModel` and the
block contract every network follows.
"""

from __future__ import annotations

from edgetop.models.nets.base import ZooModel, first_state, num_params, run_blocks

__all__ = ["ZooModel", "first_state", "num_params", "run_blocks"]
