"""The Xinlian hub: Starlette app, endpoints, auth, federated executor, audit, store and CLI."""
