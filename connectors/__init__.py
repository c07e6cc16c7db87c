"""Connector adapters: one per kind of department system, all behind one small contract.

See `connectors.contract` for the contract and docs/connectors.md for the mapping reference.
"""

from .contract import Connector, ConnectorError, Health, UpstreamInvalid, UpstreamUnavailable

__all__ = ["Connector", "ConnectorError", "Health", "UpstreamInvalid", "UpstreamUnavailable"]
