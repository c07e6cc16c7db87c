"""Opening the hub store (SQLite by default, PostgreSQL in production) and bringing it up to date."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from .models import Base


class Store:
    """A connection pool to the hub store and a session factory."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: AsyncEngine = create_async_engine(url)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    @classmethod
    async def open(cls, url: str) -> "Store":
        store = cls(url)
        await store.upgrade()
        return store

    async def upgrade(self) -> None:
        """Bring the schema up to date (to be replaced by Alembic migrations)."""
        async with self.engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)

    def session(self) -> AsyncSession:
        return self.sessions()

    async def close(self) -> None:
        await self.engine.dispose()
