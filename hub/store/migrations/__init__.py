"""Alembic migrations of the hub store (env.py, script.py.mako, versions/); applied by `Store.upgrade()`."""
