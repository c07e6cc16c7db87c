"""The admin API (`/admin/graphql`) and the administrative operations behind it and the CLI.

* `operations` — validated changes to clients, purposes, consents and objections (`AdminOperations`).
* `policy_admin` — policy changes, each a new version with a reason (`PolicyOperations`).
* `policy_text` — a stored policy document as TOML.
* `dry_run` — what a client would receive for a subject under a policy version.
* `context`, `types`, `schema` — the admin GraphQL schema and what one request carries.
* `endpoint` — the Starlette handler: admin scope only, rate-limited, every request audited.
"""

from .operations import AdminInputError, AdminOperations

__all__ = ["AdminInputError", "AdminOperations"]
