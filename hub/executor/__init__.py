"""The federated executor: the only place where policies and connectors meet.

Root fields admit the subjects they name through `SubjectAdmission` (identifiers, budget, audit,
objections, existence in the registry). For each family field the executor decides with
`policies.engine` which of the selected fields the caller may receive, asks each source
connector (through a per-request `FamilyLoader`) for those fields only, applies the row rules
and record annotations the policy declares (`policies.rules`), and records what was released,
denied and masked, and which rules applied, for the audit.

Operations of a hot shape (one `legalPerson` / `legalPersons` root field over subject, family and
record fields) go the same way without graphql-core's per-field machinery: `planned.py` runs the
resolvers' stages once per family field for all subjects, in graphql-core's order (`shape.py`
compiles the documents).
"""

from .admission import SubjectAdmission
from .federation import Federation
from .request import RequestContext
from .resolvers import HubResolvers

__all__ = ["Federation", "RequestContext", "HubResolvers", "SubjectAdmission"]
