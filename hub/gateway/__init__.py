"""The gateway: the request pipeline every entry point passes, composed once.

- `profile` — `EntryPoint` (an entry point declared: path, methods, caller, rate rules, body
  limit, audit, error style) and `Exchange` (what a handler is given);
- `pipeline` — `Gateway`: request id → client address → per-IP admission → method →
  authentication → per-client admission → bounded body → handler inside the audit scope;
- `addresses` — the client's address, and the trusted proxies that may forward it;
- `authentication` — bearer token → `Principal`, RFC 6750 challenges, the declared purpose;
- `body` — the bounded, timed body read;
- `refusal` — `Refusal` and the error styles (GraphQL, OAuth2, plain JSON);
- `refusal_tally` — rate-limit refusals counted instead of stored one by one;
- `lockout` — back-off after failed client authentications (OAuth endpoints).

The entry points themselves are declared in `hub/app.py`; docs/architecture.md shows the path.
"""
