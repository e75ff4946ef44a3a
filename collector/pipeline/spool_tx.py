"""One write transaction of a spool (collector/pipeline/spool.py): ``BEGIN IMMEDIATE`` on entry, and
on exit a ``COMMIT``, or a rollback that leaves the spool's pending count as it was."""

from __future__ import annotations

import contextlib
import sqlite3
from typing import Protocol


class Spool(Protocol):
    """What a transaction needs of its spool (collector/pipeline/spool.py's ``Spool``): the
    connection, the pending count it restores on a rollback, and the check at its start."""

    _db: sqlite3.Connection
    _pending: int

    def _begun(self) -> None: ...


class Transaction:
    """One write transaction of a spool: what it changed of the pending count takes effect
    when it commits, and not at all when it does not."""

    def __init__(self, spool: Spool) -> None:
        self._spool = spool
        self._pending = 0

    def __enter__(self) -> None:
        db = self._spool._db
        if db.in_transaction:  # left open by a fault: a new one could not begin
            self._rollback()
        db.execute("BEGIN IMMEDIATE")
        try:
            self._spool._begun()
        except BaseException:
            self._rollback()
            raise
        self._pending = self._spool._pending

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        spool = self._spool
        if exc_type is None:
            try:
                spool._db.execute("COMMIT")
            except BaseException:
                self._undo()
                # SQLite may leave the transaction open after a failed COMMIT (a full disk):
                # end it, or no later transaction could begin
                self._rollback()
                raise
        else:
            self._undo()
            self._rollback()  # the error that ended the transaction is the one raised

    def _rollback(self) -> None:
        """End the open transaction, if SQLite has not ended it itself (it may after
        SQLITE_FULL); a failure to do so does not hide the error being raised."""
        db = self._spool._db
        if db.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")

    def _undo(self) -> None:
        self._spool._pending = self._pending
