"""The project's own small error hierarchy.

Third-party errors (asyncssh, OSError, subprocess failures) are translated into these at the
transport boundary, so that everything above remote/ handles a handful of explicit cases.
"""

from __future__ import annotations


class EdgetopError(Exception):
    """Base of every error edgetop raises on purpose."""


class TransportError(EdgetopError):
    """A host could not be reached or its connection broke."""


class ConnectError(TransportError):
    """TCP connect, SSH handshake or an established connection failed."""


class AuthError(TransportError):
    """The host refused every credential we offered."""


class HostKeyError(TransportError):
    """The host's key is unknown or differs from known_hosts; we refuse to talk to it."""


class AgentError(TransportError):
    """The agent could not be started on the host, or died."""


class AgentLineError(EdgetopError):
    """One line from an agent is not valid protocol; the line is skipped and counted."""
