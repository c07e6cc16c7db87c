"""The disclosure policy engine and the shipped default policy.

A `Policy` assigns a `DisclosureClass` to every field of every record family and says which
classes each OAuth2 scope grants. `policies.engine.decide` answers, before anything is fetched,
whether a principal may receive a field. Fields the policy does not name are CONFIDENTIAL.
Row rules (`policies.rows`) and record annotations (`policies.annotations`) are declared in the
policy too, as registered kinds (`policies.rules`).
"""

from .engine import Decision, decide
from .loader import default_policy_path, load_policy
from .model import DisclosureClass, FieldKey, Policy, PolicyError
from .rules import RecordAnnotation, RowRule

__all__ = [
    "DisclosureClass", "Policy", "PolicyError", "FieldKey",
    "load_policy", "default_policy_path", "Decision", "decide", "RowRule", "RecordAnnotation",
]
