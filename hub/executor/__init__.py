"""The federated executor: the only place where policies and connectors meet.

For each family field the executor decides with `policies.engine` which of the selected fields
the caller may receive, asks each source connector (through a per-request `FamilyLoader`) for
those fields only, applies row rules, and records what was released and denied for the audit.
"""

from .federation import Federation
from .request import RequestContext
from .resolvers import HubResolvers

__all__ = ["Federation", "RequestContext", "HubResolvers"]
