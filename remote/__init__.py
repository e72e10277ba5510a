"""Transports (ssh, local, sim), the host agent and its wire protocol. Never imports Textual."""
