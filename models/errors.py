"""Errors of the models layer.

`ModelError` is the base of everything the zoo raises on purpose. It does not derive from
`edgetop.remote.errors.EdgetopError` because models/ imports nothing from remote/ (the import
rule in tests/test_layout.py); callers that want one hierarchy catch both.
"""

from __future__ import annotations


class ModelError(Exception):
    """A model could not be named, built or fed as asked."""


class UnknownModelError(ModelError, KeyError):
    """A model name that is neither in the catalog nor a loadable `package.module:function`.

    Also a `KeyError`, so `name in CATALOG`-style code that catches KeyError keeps working.
    """

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ModelOptionError(ModelError, ValueError):
    """An option (image_size, seq_len, rows_scale, ...) a model does not take, or a bad value."""
