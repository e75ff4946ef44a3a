"""What every source's client shares about time: the clock and sleep it is handed (so tests
can drive them) and the back-off after refused credentials.

A device that refuses our password is not asked again at once: asking again and again with
a wrong password gets the address blocked on some devices (the FRITZ!Box lengthens its
``BlockTime`` with every failure) and fills the log. The period starts at ``initial_s``,
doubles with every refusal after a blocked period and stops growing at ``max_s``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from collector.errors import AuthError

#: A monotonic clock in seconds (``time.monotonic``).
Clock = Callable[[], float]
#: An awaitable pause in seconds (``asyncio.sleep``).
Sleep = Callable[[float], Awaitable[None]]

#: First and longest pause after refused credentials before the device is asked again.
AUTH_BACKOFF_INITIAL_S = 60.0
AUTH_BACKOFF_MAX_S = 3600.0


class AuthBackoff:
    """Remembers refused credentials and keeps us from asking the device again too soon.

    The first refusal blocks for ``initial_s``; every refusal after a blocked period doubles
    it up to ``max_s``; a success resets it.
    """

    def __init__(
        self,
        *,
        clock: Clock = time.monotonic,
        initial_s: float = AUTH_BACKOFF_INITIAL_S,
        max_s: float = AUTH_BACKOFF_MAX_S,
    ) -> None:
        self._clock = clock
        self._initial_s = initial_s
        self._max_s = max_s
        self._next_s = initial_s
        self._until = 0.0
        self._error: AuthError | None = None

    @property
    def error(self) -> AuthError | None:
        return self._error

    def check(self) -> None:
        """Raise the remembered AuthError while the back-off period lasts."""
        if self._error is not None and self._clock() < self._until:
            raise AuthError(str(self._error))

    def failed(self, error: AuthError) -> float:
        """Record a refusal; returns the seconds until the device may be asked again.

        Refusals that arrive while a period is running (concurrent requests of one round)
        do not lengthen it again.
        """
        now = self._clock()
        if self._error is not None and now < self._until:
            return self._until - now
        period = self._next_s
        self._error = error
        self._until = now + period
        self._next_s = min(period * 2, self._max_s)
        return period

    def succeeded(self) -> None:
        self._error = None
        self._until = 0.0
        self._next_s = self._initial_s
