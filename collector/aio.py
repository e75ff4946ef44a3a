"""Small asyncio helpers shared by sources and clients."""

from __future__ import annotations

from types import TracebackType
from typing import Self


class AsyncClosing:
    """An async context manager whose exit calls ``aclose``."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Release sessions and connections."""
