"""The disclosure policy engine and the shipped default policy.

A `Policy` assigns a `DisclosureClass` to every field of every record family and says which
classes each OAuth2 scope grants. `policies.engine.decide` answers, before anything is fetched,
whether a principal may receive a field. Fields the policy does not name are CONFIDENTIAL.
"""

from .model import DisclosureClass, Policy, PolicyError, FieldKey
from .loader import load_policy, default_policy_path
from .engine import Decision, decide

__all__ = [
    "DisclosureClass", "Policy", "PolicyError", "FieldKey",
    "load_policy", "default_policy_path", "Decision", "decide",
]
