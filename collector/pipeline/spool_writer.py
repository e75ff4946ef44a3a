"""The spool's own thread: the event loop never waits for the disk.

Every commit of the spool that adds lines is synced (``synchronous=FULL``), which takes
milliseconds while a store writes to the same disk. Appends (job runs) and
acknowledgements (deliveries) made from the event loop are queued here and written on the
spool's own thread, each in a transaction of its own, in the order they came; meanwhile the
loop goes on with other jobs, parsing and sending. Each caller is answered once its
transaction is committed: a reading still counts as collected only once it is on disk, and
a failure costs only its own operation.

Every caller is answered, whatever happens on the thread, and none waits longer than the
bound it gives: an operation the thread has not taken yet by then is withdrawn (it is never
written); one under way is told to its caller as under way, with the future that will still
say whether it was written.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Concatenate, ParamSpec, Protocol, TypeVar

_Queued = tuple[Callable[[], Any], bool, "asyncio.Future[Any]", asyncio.AbstractEventLoop]


_P = ParamSpec("_P")
_R = TypeVar("_R")


class _HasLock(Protocol):
    @property
    def _lock(self) -> threading.RLock: ...


_S = TypeVar("_S", bound=_HasLock)


def locked(method: Callable[Concatenate[_S, _P], _R]) -> Callable[Concatenate[_S, _P], _R]:
    """Run ``method`` holding its object's ``_lock``: one thread at a time uses the
    spool's connection."""

    def with_lock(self: _S, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        with self._lock:
            return method(self, *args, **kwargs)

    functools.update_wrapper(with_lock, method)
    return with_lock


class Transactional(Protocol):
    def run_in_transaction(self, op: Callable[[], _R], *, durable: bool) -> _R:
        """``op``'s result, in a transaction of its own; synced to disk before returning
        when ``durable``."""
        ...


class HandOverTimeout(Exception):
    """The spool's thread did not answer within ``waited_s``.

    ``under_way`` is None when the operation was withdrawn before the thread took it (it is
    never run); else the thread is running it and ``under_way`` will still get its result.
    """

    def __init__(self, waited_s: float, under_way: asyncio.Future[Any] | None) -> None:
        super().__init__(f"no answer from the spool's thread within {waited_s:.0f} s")
        self.waited_s = waited_s
        self.under_way = under_way


class SpoolThread:
    """Operations queued from event loops, run on one thread one at a time."""

    def __init__(self, target: Transactional) -> None:
        self._target = target
        self._queue: list[_Queued] = []
        self._guard = threading.Lock()
        self._busy = False
        #: time.monotonic() when the thread took the operations it runs now
        self._since: float | None = None
        self._thread: ThreadPoolExecutor | None = None

    def busy_for(self) -> float:
        """How long the thread has been running its current operations (0 when idle)."""
        since = self._since
        return 0.0 if since is None else max(0.0, time.monotonic() - since)

    async def run(self, op: Callable[[], _R], *, durable: bool = True,
                  timeout_s: float | None = None) -> _R:  # fmt: skip
        """``op`` done and committed (synced to disk when ``durable``). A cancelled caller
        does not stop it:
        once queued, an operation is written either way. After ``timeout_s`` without an
        answer: ``HandOverTimeout``."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[_R] = loop.create_future()
        entry: _Queued = (op, durable, future, loop)
        with self._guard:
            self._queue.append(entry)
            start, self._busy = not self._busy, True
            if start and self._thread is None:
                self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spool")
        if start:
            assert self._thread is not None
            try:
                self._thread.submit(self._drain)
            except RuntimeError:  # closed: nothing runs any more
                with self._guard:
                    self._busy = False
                    self._withdraw(entry)
                raise
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout_s)
        except TimeoutError:
            with self._guard:
                withdrawn = self._withdraw(entry)
            raise HandOverTimeout(timeout_s or 0.0, None if withdrawn else future) from None

    def _withdraw(self, entry: _Queued) -> bool:
        """Take ``entry`` out of the queue (holding ``_guard``); False if the thread has it."""
        for i, queued in enumerate(self._queue):
            if queued is entry:
                del self._queue[i]
                return True
        return False

    def close(self) -> None:
        """No new thread work; what is queued still runs (and fails on a closed spool)."""
        if self._thread is not None:
            self._thread.shutdown(wait=False)

    def _drain(self) -> None:
        try:
            while self._run_next():
                pass
        except BaseException:
            # a fault here must not leave the queue without a thread for good
            with self._guard:
                self._busy = False
                self._since = None
            raise

    def _run_next(self) -> bool:
        """Run the oldest operation queued and answer its caller; False when none was."""
        with self._guard:
            if not self._queue:
                self._busy = False
                self._since = None
                return False
            op, durable, future, loop = self._queue.pop(0)
            self._since = time.monotonic()
        result: Any
        try:
            result = self._target.run_in_transaction(op, durable=durable)
        except BaseException as err:  # the caller must be answered
            result = err
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
            loop.call_soon_threadsafe(_settle, future, result)
        return True


def _settle(future: asyncio.Future[Any], result: Any) -> None:
    if future.cancelled():
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)
