"""A fake Thinknx server at the httpx transport: auth checks, statuses, scripted errors."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from dataclasses import dataclass, field

import httpx

USERNAME = "ser vice"
PASSWORD = "p:ss w0rd&x=1"  # ':' and spaces, and characters a URL must encode
KEY = "K3yS3cr3tCloudAbc123"
REALM = "thinknx"
NONCE = "6b1c1e0e5d4c"
VERSION = "1.1.10.12"

STATUS = {
    "actualtemp": "21.5", "setpointstatus": 20.5, "tempmodestatus": 1, "chronoenstatus": 0,
    "hvacpowerstatus": 1, "hvacsetpointstatus": 24, "hvacmodestatus": 4, "hvacfanset": 2,
    "hvacfanstatus": 2,
    "powerstatus": 1, "powerlevelstatus": 40, "heightlevelstatus": 75, "blindanglestatus": 10,
    "getvalue": 1.5,
}


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


@dataclass
class FakeServer:
    """``mode``: basic | digest | params | cloud. ``errors``: guid -> (status, body);
    ``capability_errors``: (guid, controller) -> (status, body)."""

    mode: str
    password: str = PASSWORD
    errors: dict[str, tuple[int, bytes]] = field(default_factory=dict)
    capability_errors: dict[tuple[str, str], tuple[int, bytes]] = field(default_factory=dict)
    retry_after: list[str] = field(default_factory=list)  # one 429 per entry, then answers
    delay: bool = False
    requests: list[httpx.Request] = field(default_factory=list)
    challenges: int = 0
    in_flight: int = 0
    max_in_flight: int = 0

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay:
                for _ in range(5):
                    await asyncio.sleep(0)
            return self._answer(request)
        finally:
            self.in_flight -= 1

    def _answer(self, request: httpx.Request) -> httpx.Response:
        parts = request.url.path.strip("/").split("/")
        if self.mode == "cloud":
            if parts[0] != KEY:
                return httpx.Response(403)
            parts = parts[1:]
        elif (refused := self._refused(request)) is not None:
            return refused
        if parts[:2] != ["api", "V1"]:
            return httpx.Response(404)
        controller = "/".join(parts[2:])
        if self.retry_after:
            return httpx.Response(429, headers={"Retry-After": self.retry_after.pop(0)},
                                  json={"error": "rate limit"})
        if controller == "system/serverStatus":
            return httpx.Response(200, json={
                "namespace": controller, "version": VERSION,
                "process_uptime": "1 day 2 hours 3 min", "server_uptime": "9 days 0 hours 5 min",
                "config_time": "10:00:00 2024-06-01", "connected_clients": 2, "pbx_users": "101"})
        guid = request.url.params.get("guid", "")
        if guid in self.errors:
            status, body = self.errors[guid]
            return httpx.Response(status, content=body)
        if (guid, controller) in self.capability_errors:
            status, body = self.capability_errors[guid, controller]
            return httpx.Response(status, content=body)
        return httpx.Response(200, json={"namespace": controller, "guid": guid,
                                         "status": STATUS[controller], "comm_obj": 1})

    def _refused(self, request: httpx.Request) -> httpx.Response | None:
        params = request.url.params
        header = request.headers.get("authorization", "")
        if self.mode == "params":
            ok = (params.get("auth") == "basic" and params.get("user") == USERNAME
                  and params.get("pass") == self.password and not header)
            return None if ok else httpx.Response(403)
        if params.get("auth") != self.mode:
            return httpx.Response(400, json={"error": "params errors"})
        if self.mode == "basic":
            expected = "Basic " + base64.b64encode(
                f"{USERNAME}:{self.password}".encode()).decode()
            return None if header == expected else httpx.Response(403)
        if header.startswith("Digest ") and self._digest_ok(header[7:], request):
            return None
        self.challenges += 1
        return httpx.Response(401, headers={"WWW-Authenticate": (
            f'Digest realm="{REALM}", nonce="{NONCE}", qop="auth", algorithm=MD5')})

    def _digest_ok(self, header: str, request: httpx.Request) -> bool:
        fields = {}
        for item in header.split(", "):
            key, _, value = item.partition("=")
            fields[key.strip()] = value.strip('"')
        ha1 = _md5(f"{USERNAME}:{REALM}:{self.password}")
        ha2 = _md5(f"{request.method}:{fields.get('uri', '')}")
        expected = _md5(f"{ha1}:{NONCE}:{fields.get('nc')}:{fields.get('cnonce')}:auth:{ha2}")
        return (fields.get("username") == USERNAME and fields.get("response") == expected
                and fields.get("uri") == request.url.raw_path.decode())


def json_body(doc: object) -> bytes:
    return json.dumps(doc).encode()


IMPOSSIBLE = (400, json_body({"error": "impossible to execute"}))
PARAMS_ERRORS = (400, json_body({"error": "params errors"}))
NOT_FOUND = (404, json_body({"error": "device not found"}))


def asked(server: FakeServer, controller: str, guid: str) -> int:
    """How many requests for ``controller`` of ``guid`` the server got."""
    return sum(1 for r in server.requests if r.url.path.endswith("/api/V1/" + controller)
               and r.url.params.get("guid") == guid)


class Hanging:
    """A server that never answers: every request waits until the test lets its timeout
    strike (``strike``), then fails as httpx does when a read times out."""

    def __init__(self) -> None:
        self.waiting: list[asyncio.Future[None]] = []
        self.sent: list[str] = []

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    async def handle(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request.url.path.rsplit("/V1/", 1)[-1])
        waiting = asyncio.get_running_loop().create_future()
        self.waiting.append(waiting)
        await waiting
        raise httpx.ReadTimeout("timed out", request=request)

    def strike(self) -> int:
        """Time out every request waiting now; how many there were."""
        count = len(self.waiting)
        for waiting in self.waiting:
            waiting.set_result(None)
        self.waiting.clear()
        return count
