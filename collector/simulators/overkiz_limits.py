"""Per-session rate limits and error bodies of the simulated Overkiz service.

Every "Per-session rate-limit" line of overkiz-enduser-rest-api.txt is in LIMITS: an operation
(method and path template) with its period and whether the budget is the operation's own
("for this particular operation") or shared by a category ("for all operations of the same
category", the exec family). A call inside the period is answered with the service's
"Too many requests" error and counted as a violation.
"""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from dataclasses import dataclass

from collector.simulators._http import Response

DAY, HOUR, EXEC = 86400.0, 3600.0, 28 * 60 + 48.0


@dataclass(frozen=True, slots=True)
class Limit:
    method: str
    template: str
    period_s: float
    category: str  # bulk-load, bulk-history, exec, polling, keep-alive, switch
    shared: bool = False  # one budget for the whole category

    @property
    def key(self) -> str:
        return self.category if self.shared else f"{self.method} {self.template}"


def _limits(
    period: float, category: str, method: str, templates: str, shared: bool = False
) -> list[Limit]:
    return [Limit(method, t, period, category, shared) for t in templates.split()]


LIMITS: tuple[Limit, ...] = tuple(
    _limits(
        DAY,
        "bulk-load",
        "GET",
        """/actionGroups /conditionGroups /enduser/mainAccount
        /enduser/preferences /enduser/secondaryAccounts /enduser/setups /setup
        /setup/additionalInformation /setup/calendar/days /setup/calendar/rules
        /setup/calendar/schedule/{startDate}/{endDate} /setup/calendar/schedule/{y}/{m}/{d}
        /setup/devices /setup/features /setup/gateways /setup/interactiveNotifications
        /setup/interactiveNotifications/history /setup/location /setup/options /setup/places
        /setup/roles /setup/zones /triggers""",
    )
    + _limits(
        DAY,
        "bulk-load",
        "POST",
        """/setup/devices/states/refresh
        /setup/devices/{deviceURL}/states/refresh /setup/gateways/{gatewayId}/devices/states/refresh
        /setup/gateways/{gatewayId}/protocols/{protocolType}/devices/states/refresh
        /setup/protocols/{protocolType}/devices/states/refresh""",
    )
    + _limits(DAY, "bulk-load", "PUT", "/setup/devices/refresh /setup/devices/states/refresh")
    + _limits(
        EXEC,
        "bulk-history",
        "GET",
        """/history /history/devicesEvent
        /history/executions /history/lastExecutions /history/notificationEvents""",
    )
    + _limits(
        EXEC,
        "exec",
        "POST",
        """/exec/apply /exec/apply/geolocated
        /exec/apply/highPriority /exec/apply/internal /exec/schedule/{id}/{ts} /exec/{id}
        /exec/{id}/geolocated /exec/{id}/internal""",
        shared=True,
    )
    + _limits(1.0, "polling", "POST", "/events/{listenerId}/fetch")
    + _limits(
        1.0, "keep-alive", "POST", "/setup/gateways/{gatewayId}/protocols/{protocolType}/keepAlive"
    )
    + _limits(HOUR, "switch", "POST", "/setup/current/{setupOID}")
)

# literal segments that are never a path variable (so /exec/apply is not /exec/{id})
_LITERALS = {"apply", "schedule", "geolocated", "internal", "highPriority", "refresh", "states"}


def _pattern(template: str) -> re.Pattern[str]:
    parts = [("[^/]+" if p.startswith("{") else re.escape(p)) for p in template.split("/")]
    return re.compile("/".join(parts) + "$")


_COMPILED = [(limit, _pattern(limit.template)) for limit in LIMITS]


def find_limit(method: str, path: str) -> Limit | None:
    """The documented limit of this call (path relative to the API base), if any."""
    segments = path.split("/")
    for limit, pattern in _COMPILED:
        if limit.method != method or not pattern.match(path):
            continue
        template = limit.template.split("/")
        if any(
            t.startswith("{") and s in _LITERALS for t, s in zip(template, segments, strict=False)
        ):
            continue
        return limit
    return None


class RateLimits:
    """Accepted call times per (session, limit key); violations counted per limit key."""

    def __init__(self, tolerance_s: float = 0.05) -> None:
        self.tolerance_s = tolerance_s  # arrival jitter forgiven on the 1 s limits
        self.violations: Counter[str] = Counter()
        self._last: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def allow(self, session: str, limit: Limit, now: float) -> bool:
        slack = min(self.tolerance_s, limit.period_s * 0.05)
        with self._lock:
            last = self._last.get((session, limit.key))
            if last is not None and now - last < limit.period_s - slack:
                self.violations[limit.key] += 1
                return False
            self._last[(session, limit.key)] = now
            return True

    def forget(self, session: str) -> None:
        with self._lock:
            for key in [k for k in self._last if k[0] == session]:
                del self._last[key]


# ---- error bodies: the JSON shapes and texts of the real service ------------------------------


def error(status: int, code: str, text: str | None) -> Response:
    body = json.dumps({"errorCode": code, "error": text}).encode()
    return Response(status, body, "application/json")


def not_authenticated(local: bool) -> Response:
    text = "Not authenticated." if local else "Not authenticated"
    return error(401, "RESOURCE_ACCESS_DENIED", text)


def missing_token() -> Response:
    return error(401, "RESOURCE_ACCESS_DENIED", "Missing authorization token.")


def bad_credentials() -> Response:
    return error(401, "AUTHENTICATION_ERROR", "Bad credentials")


def too_many_logins(user: str) -> Response:
    text = f"Too many requests, try again later : login with {user}"
    return error(429, "AUTHENTICATION_ERROR", text)


def too_many_requests(limit: Limit) -> Response:
    return error(
        429, "RESOURCE_ACCESS_DENIED", f"Too many requests, try again later : {limit.category}"
    )


def no_listener() -> Response:
    return error(400, "UNSPECIFIED_ERROR", '"No registered event listener."')


def invalid_listener(listener: str) -> Response:
    return error(400, "UNSPECIFIED_ERROR", f"Invalid event listener id : {listener}")


def no_such_resource() -> Response:
    return error(404, "INVALID_API_CALL", "No such resource")


def unknown_object() -> Response:
    """The local API's answer to what it does not know (errors/local/400-unknown-object.json)."""
    return error(400, "UNSPECIFIED_ERROR", "Unknown object.")


def no_such_device(url: str) -> Response:
    return error(400, "NO_SUCH_DEVICE", f'No such device : "{url}"')


def bad_parameters(message: str) -> Response:
    return error(400, "INVALID_PARAMETER", f'Bad parameters. ("{message}")')


def session_and_bearer() -> Response:
    return error(400, "UNSPECIFIED_ERROR", "Cannot use JSESSIONID and bearer token in same request")


# the maintenance page of the service (errors/cloud/503-maintenance.html says "Our service is
# down for maintenance."), written here much shorter
MAINTENANCE_HTML = """<html>
<head><title>Maintenance</title></head>
<body><div style="padding: 20px">
<p>Oops ! Our service is down for maintenance. Please try again later.</p>
<span>503</span>
</div></body>
</html>
"""

# the answer of the proxy in front of the service when the service does not answer it
# (errors/cloud/502-bad-gateway.html)
BAD_GATEWAY_HTML = """<html><head><title>502 Bad Gateway</title></head>
<body><h1>Bad Gateway</h1><p>The upstream server sent an invalid response.</p></body></html>
"""


def maintenance() -> Response:
    return Response(503, MAINTENANCE_HTML.encode(), "text/html; charset=utf-8")


def bad_gateway() -> Response:
    return Response(502, BAD_GATEWAY_HTML.encode(), "text/html; charset=utf-8")


def gateway_timeout() -> Response:
    """What a call left hanging finally gets, long after any client gave up on it."""
    return Response(504, b"", "text/html")
