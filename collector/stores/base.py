"""What every store offers the spool."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from collector.errors import StoreUnavailable


class StoreGarbled(StoreUnavailable):
    """The store answered a write, but with something that cannot be read (e.g. a control
    character in an error header makes the HTTP answer malformed).

    Transient at first, since a broken proxy looks the same; but when the same batch keeps
    getting it, the delivery looks for a line to blame, as for a rejection.
    """


class Store(Protocol):
    """A destination for line-protocol lines.

    ``write`` either stores every line or raises one of the ``collector.errors`` store
    errors: ``StoreUnavailable`` (transient, with ``retry_after`` when the server gave one),
    ``StoreRejected`` (HTTP 400/422: some lines are bad; the message is the server's),
    ``StoreTooLarge`` (413: send fewer lines) or ``StoreAuthError`` (401/403).
    Writing the same line twice must be harmless: same series and timestamp overwrite.
    """

    name: str

    async def write(self, lines: Sequence[str]) -> None: ...

    async def check(self) -> str:
        """Reach the store and verify write permission; return a short description."""
        ...

    async def aclose(self) -> None: ...
