"""The tamper-evident audit trail: one hash-chained entry per GraphQL request.

`AuditEntry` (entry.py) is what is recorded and its canonical form; `chain.py` is the hash
rule; `AuditTrail` (trail.py) group-commits entries and fails closed with `AuditUnavailable`;
`verify_chain` (verify.py) re-walks the chain and names the first tampered entry.
"""

from .chain import GENESIS_HASH, chain_hash
from .entry import AuditEntry, StoredAuditEntry
from .trail import AuditTrail, AuditUnavailable
from .verify import VerifyReport, verify_chain

__all__ = [
    "GENESIS_HASH",
    "AuditEntry",
    "AuditTrail",
    "AuditUnavailable",
    "StoredAuditEntry",
    "VerifyReport",
    "chain_hash",
    "verify_chain",
]
