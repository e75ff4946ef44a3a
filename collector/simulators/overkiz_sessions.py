"""The sessions and event listeners of the simulated Overkiz cloud (overkiz-enduser-rest-api.txt:
"POST Login /login", the JSESSIONID cookie, "Register a new event listener", "Fetch events").

A session ends after ``session_ttl_s`` without requests, or ``listener_ttl_s`` once it has an
event listener ("registering an event listener drastically reduces the session timeout"); a
listener not fetched for ``listener_ttl_s`` is forgotten; three refused logins in ten minutes
refuse further attempts. The caller holds ``lock`` around nothing: every method takes it.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from collector.simulators import overkiz_limits as errors
from collector.simulators._http import Request, Response
from collector.simulators.overkiz_answers import json_response, tick, uuid4
from collector.simulators.overkiz_house import TICK_S
from collector.simulators.overkiz_limits import RateLimits

#: Ticks of changes one fetch delivers at most (older ones are gone).
MAX_TICKS_PER_FETCH = 30
#: Changes of one tick: events for the cloud (``local`` False) or the local API.
Changes = Callable[[int, bool], list[dict[str, Any]]]


@dataclass(slots=True)
class _Session:
    user: str
    seen: float
    listener: str | None = None


@dataclass(slots=True)
class _Listener:
    session: str
    cursor: int  # the last tick whose changes were delivered
    fetched: float
    local: bool
    pending: list[dict[str, Any]] = field(default_factory=list)


class Sessions:
    """The logins, sessions and listeners of one simulated account."""

    def __init__(self, username: str, password: str, rng: random.Random, limits: RateLimits,
                 *, session_ttl_s: float, listener_ttl_s: float,
                 lock: threading.RLock) -> None:
        self.username, self.password = username, password
        self.session_ttl_s, self.listener_ttl_s = session_ttl_s, listener_ttl_s
        self.logins = 0
        self.logins_failed = 0
        self._rng = rng
        self._limits = limits
        self._lock = lock
        self._sessions: dict[str, _Session] = {}
        self._listeners: dict[str, _Listener] = {}
        self._gone: set[str] = set()  # listener ids that existed once
        self._failed_logins: list[float] = []

    def login(self, request: Request, now: float) -> Response:
        form = request.form()
        user = form.get("userId", "")
        with self._lock:
            self._failed_logins = [t for t in self._failed_logins if now - t < 600]
            if len(self._failed_logins) >= 3:
                self._limits.violations["login"] += 1
                return errors.too_many_logins(user)
            if user != self.username or form.get("userPassword") != self.password:
                self.logins_failed += 1
                self._failed_logins.append(now)
                return errors.bad_credentials()
            self.logins += 1
            sid = f"{self._rng.getrandbits(128):032X}"
            self._sessions[sid] = _Session(user, now)
        response = json_response({"success": True, "roles": [{"name": "ENDUSER"}]})
        response.headers["Set-Cookie"] = f"JSESSIONID={sid}; Path=/enduser-mobile-web; HttpOnly"
        return response

    def check(self, sid: str | None, now: float) -> Response | None:
        """None when ``sid`` is a live session (which it keeps alive); the refusal else."""
        with self._lock:
            session = self._sessions.get(sid or "")
            if session is None or now - session.seen > self._ttl(session):
                if session is not None:
                    self.end(sid or "")
                return errors.not_authenticated(local=False)
            session.seen = now
        return None

    def _ttl(self, session: _Session) -> float:
        return self.listener_ttl_s if session.listener else self.session_ttl_s

    def end(self, sid: str) -> None:
        with self._lock:
            session = self._sessions.pop(sid, None)
            if session is not None and session.listener:
                self._listeners.pop(session.listener, None)
                self._gone.add(session.listener)
            self._limits.forget(sid)

    def end_all(self) -> None:
        with self._lock:
            for sid in list(self._sessions):
                self.end(sid)

    def drop_listeners(self) -> None:
        with self._lock:
            self._gone.update(self._listeners)
            self._listeners.clear()
            for session in self._sessions.values():
                session.listener = None

    def logout(self, session: str) -> Response:
        self.end(session)
        return json_response({"logout": True})

    def register(self, session: str, now: float, local: bool) -> Response:
        with self._lock:
            owner = self._sessions.get(session)
            old = owner.listener if owner else None
            if old:
                self._listeners.pop(old, None)
                self._gone.add(old)
            listener = str(uuid4(self._rng))
            self._listeners[listener] = _Listener(session, tick(now), now, local)
            if owner:
                owner.listener = listener
        return json_response({"id": listener})

    def unregister(self, listener: str) -> Response:
        with self._lock:
            if self._listeners.pop(listener, None) is None:
                return errors.no_listener()
            self._gone.add(listener)
        return Response(200, b"", "application/json")

    def fetch(self, listener_id: str, session: str, now: float, changes: Changes) -> Response:
        with self._lock:
            listener = self._listeners.get(listener_id)
            if listener is not None and now - listener.fetched > self.listener_ttl_s:
                del self._listeners[listener_id]
                self._gone.add(listener_id)
                listener = None
            if listener is None or listener.session != session:
                gone = listener_id in self._gone or listener is not None
                return errors.no_listener() if gone else errors.invalid_listener(listener_id)
            listener.fetched = now
            first = max(listener.cursor + TICK_S, tick(now) - (MAX_TICKS_PER_FETCH - 1) * TICK_S)
            events = [e for t in range(first, tick(now) + 1, TICK_S)
                      for e in changes(t, listener.local)]
            listener.cursor = max(listener.cursor, tick(now))
        return json_response(events)
