"""TR-064 of the simulated FRITZ!Box: device descriptions, SCPDs and SOAP behind HTTP digest.

Serves ``/tr64desc.xml``, ``/igddesc.xml`` and the SCPD of every service they list without
authentication (collector/simulators/fritzbox_upnp.py), the TR-064 control URLs with digest
authentication (RFC 7616, MD5, qop=auth, realm "F!Box SOAP-Auth") and the UPnP IGD's
without, as FRITZ!OS does; a path the box does not have is an HTML 404 page. Actions follow
``avm-tr064-x_voip.txt``; an action the firmware does not have answers the UPnP error 401
"Invalid Action" in a SOAP fault with HTTP 500. ``old_firmware`` drops the actions added in
2021 (X_AVM-DE_GetVoIPStatus, X_AVM-DE_GetVoIPAccounts and the status output of
X_AVM-DE_GetVoIPAccount).
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from xml.sax.saxutils import escape

from collector.simulators import fritzbox_upnp as upnp
from collector.simulators._http import Clock, Request, Response
from collector.simulators.noise import unit_noise

REALM = "F!Box SOAP-Auth"
VOIP = upnp.VOIP.service_type
DEVICEINFO = upnp.DEVICEINFO.service_type
STATUSES = ("disabled", "not registered", "registered", "connected", "unknown")
NEW_IN_2021 = frozenset({"X_AVM-DE_GetVoIPStatus", "X_AVM-DE_GetVoIPAccounts"})
_ENVELOPE = (
    '<?xml version="1.0"?>\n<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" '
    's:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/">\n<s:Body>\n{}\n</s:Body>\n'
    "</s:Envelope>\n"
)
_UPNP_ERRORS = {401: "Invalid Action", 402: "Invalid Args", 713: "SpecifiedArrayIndexInvalid"}
_PARAM = re.compile(r'(\w+)=(?:"([^"]*)"|([^\s,]+))')


@dataclass(frozen=True, slots=True)
class Account:
    registrar: str
    number: str
    username: str
    outbound_proxy: str
    stun: str
    status: str  # the resting status; "registered" accounts are "connected" during calls


_SIP, _STUN = "sip.telefon.example", "stun.telefon.example"
ACCOUNTS = (
    Account(_SIP, "+49301234567", "4930123456701", "", _STUN, "registered"),
    Account(_SIP, "+49301234568", "4930123456802", "", _STUN, "not registered"),
    Account(
        "voip.anbieter.example", "+498955501234", "home", "proxy.anbieter.example", "", "disabled"
    ),
)
CLIENTS = (
    ("ipphone620", "Büro IP-Telefon", "+49301234567", "620"),
    ("smartphone621", "Smartphone", "+49301234568", "621"),
)
# As FRITZ!OS 8.02's SCPD lists them: with the password, which the document leaves out (the
# box's value for it is not recorded; this box answers it masked).
ACCOUNT_OUT = (
    "NewVoIPRegistrar",
    "NewVoIPNumber",
    "NewVoIPUsername",
    "NewVoIPPassword",
    "NewVoIPOutboundProxy",
    "NewVoIPSTUNServer",
)
MASKED = "****"
CLIENT_OUT = (
    "NewX_AVM-DE_ClientUsername",
    "NewX_AVM-DE_ClientRegistrar",
    "NewX_AVM-DE_ClientRegistrarPort",
    "NewX_AVM-DE_PhoneName",
    "NewX_AVM-DE_ClientId",
    "NewX_AVM-DE_OutGoingNumber",
    "NewX_AVM-DE_InternalNumber",
)
STATUS_OUT = ("NewX_AVM-DE_VoIPStatus",)
# Every argument is "New" + its state variable; these are the ones that are not strings.
_TYPES = {
    "NewFaxT38Enable": "boolean",
    "NewVoIPEnableAreaCode": "boolean",
    "NewX_AVM-DE_ClientRegistrarPort": "ui2",
    "NewX_AVM-DE_NumberOfClients": "ui2",
    "NewNumberOfNumbers": "ui4",
    "NewExistingVoIPNumbers": "ui2",
    "NewMaxVoIPNumbers": "ui2",
    "NewVoIPAccountIndex": "ui2",
    "NewX_AVM-DE_ClientIndex": "ui2",
    "NewLayer1UpstreamMaxBitRate": "ui4",
    "NewLayer1DownstreamMaxBitRate": "ui4",
    "NewUptime": "ui4",
}
#: the WAN link of the simulated box, in the TR-064 and the IGD service alike
_LINK = {
    "NewWANAccessType": "DSL",
    "NewLayer1UpstreamMaxBitRate": "46720000",
    "NewLayer1DownstreamMaxBitRate": "116800000",
    "NewPhysicalLinkStatus": "Up",
}
EXTERNAL_IP = "192.0.2.10"  # TEST-NET-1 (RFC 5737)

Handler = Callable[[dict[str, str]], dict[str, str]]


class UpnpError(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(_UPNP_ERRORS.get(code, "Action Failed"))
        self.code = code


@dataclass(frozen=True, slots=True)
class Action:
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    handler: Handler


def _const(values: dict[str, str]) -> Action:
    return Action((), tuple(values), lambda args: values)


class Tr064Service:
    """The TR-064 side of the box, an ``App`` for ``SimServer``."""

    def __init__(
        self,
        username: str,
        password: str,
        *,
        clock: Clock,
        old_firmware: bool = False,
        seed: int = 0,
    ) -> None:
        self.username = username
        self._password = password
        self.clock = clock
        self.old_firmware = old_firmware
        self.seed = seed
        self.soap_actions: Counter[str] = Counter()
        self.auth_failures = 0
        self.status_override: dict[int, str] = {}
        self._nonces: list[str] = []
        self._lock = threading.Lock()
        index = ("NewVoIPAccountIndex",)
        voip = {
            "GetInfo": _const({"NewFaxT38Enable": "0", "NewVoiceCoding": "auto"}),
            "GetExistingVoIPNumbers": _const({"NewExistingVoIPNumbers": str(len(ACCOUNTS))}),
            "GetMaxVoIPNumbers": _const({"NewMaxVoIPNumbers": "20"}),
            "GetVoIPEnableAreaCode": Action(index, ("NewVoIPEnableAreaCode",), self._area_code),
            "X_AVM-DE_GetVoIPCommonAreaCode": _const(
                {"NewX_AVM-DE_OKZ": "30", "NewX_AVM-DE_OKZPrefix": "0"}
            ),
            "X_AVM-DE_GetVoIPCommonCountryCode": _const(
                {"NewX_AVM-DE_LKZ": "49", "NewX_AVM-DE_LKZPrefix": "00"}
            ),
            "X_AVM-DE_GetNumberOfClients": _const(
                {"NewX_AVM-DE_NumberOfClients": str(len(CLIENTS))}
            ),
            "X_AVM-DE_GetClient2": Action(("NewX_AVM-DE_ClientIndex",), CLIENT_OUT, self._client),
            "X_AVM-DE_GetNumberOfNumbers": _const({"NewNumberOfNumbers": str(len(ACCOUNTS))}),
            "X_AVM-DE_GetNumbers": Action((), ("NewNumberList",), self._numbers),
            "X_AVM-DE_GetVoIPAccount": Action(
                index, ACCOUNT_OUT + (() if old_firmware else STATUS_OUT), self._account_info
            ),
            "X_AVM-DE_GetVoIPAccounts": Action(
                (), ("NewX_AVM-DE_VoIPAccountList",), self._accounts
            ),
            "X_AVM-DE_GetVoIPStatus": Action(index, STATUS_OUT, self._status),
        }
        if old_firmware:
            for name in NEW_IN_2021:
                del voip[name]
        info = {
            "NewManufacturerName": "AVM",
            "NewModelName": "FRITZ!Box 7590",
            "NewDescription": "FRITZ!Box 7590 (simulated)",
            "NewProductClass": "AVMFB",
            "NewSerialNumber": "3C3786000000",
            "NewSoftwareVersion": self.firmware,
            "NewHardwareVersion": "FRITZ!Box 7590",
            "NewSpecVersion": "1.0",
        }
        self.services = {
            VOIP: voip,
            DEVICEINFO: {"GetInfo": _const(info)},
            upnp.WAN_COMMON.service_type: {"GetCommonLinkProperties": _const(_LINK)},
            upnp.IGD_COMMON.service_type: {"GetCommonLinkProperties": _const(_LINK)},
            upnp.IGD_IP.service_type: {
                "GetExternalIPAddress": _const({"NewExternalIPAddress": EXTERNAL_IP}),
                "GetStatusInfo": Action((), _STATUS_INFO, self._status_info),
            },
        }

    def uptime_s(self) -> int:
        """Seconds since the simulated connection came up: it reconnects every Monday
        00:00 UTC."""
        return int(self.clock() - 345_600) % 604_800  # 1970-01-05 was a Monday

    # ---- data -----------------------------------------------------------------------------

    def status(self, index: int) -> str:
        """The account's X_AVM-DE_VoIPStatus now; a registered account is in calls at times."""
        if index in self.status_override:
            return self.status_override[index]
        status = ACCOUNTS[index].status
        slot = int(self.clock() // 300)
        if status == "registered" and unit_noise(self.seed, 20, index, slot) < 0.15:
            return "connected"
        return status

    def set_status(self, index: int, status: str) -> None:
        if status not in STATUSES:
            raise ValueError(f"unknown VoIP status {status!r}")
        self.status_override[index] = status

    def _status(self, args: dict[str, str]) -> dict[str, str]:
        return {"NewX_AVM-DE_VoIPStatus": self.status(_index(args, len(ACCOUNTS)))}

    def _status_info(self, args: dict[str, str]) -> dict[str, str]:
        return dict(zip(_STATUS_INFO, ("Connected", "ERROR_NONE", str(self.uptime_s())),
                        strict=True))

    def _area_code(self, args: dict[str, str]) -> dict[str, str]:
        _index(args, len(ACCOUNTS))
        return {"NewVoIPEnableAreaCode": "1"}

    def _account_info(self, args: dict[str, str]) -> dict[str, str]:
        index = _index(args, len(ACCOUNTS))
        acc = ACCOUNTS[index]
        values = (acc.registrar, acc.number, acc.username, MASKED, acc.outbound_proxy,
                  acc.stun)
        return {
            **dict(zip(ACCOUNT_OUT, values, strict=True)),
            "NewX_AVM-DE_VoIPStatus": self.status(index),
        }

    def _accounts(self, args: dict[str, str]) -> dict[str, str]:
        items = "".join(
            f"<Account><VoIPAccountIndex>{i}</VoIPAccountIndex>"
            f"<VoIPRegistrar>{a.registrar}</VoIPRegistrar><VoIPNumber>{a.number}</VoIPNumber>"
            f"<VoIPUsername>{escape(a.username)}</VoIPUsername>"
            f"<VoIPOutboundProxy>{a.outbound_proxy}</VoIPOutboundProxy>"
            f"<VoIPSTUNServer>{a.stun}</VoIPSTUNServer>"
            f"<X_AVM-DE_VoIPStatus>{self.status(i)}</X_AVM-DE_VoIPStatus></Account>"
            for i, a in enumerate(ACCOUNTS)
        )
        listing = f"<X_AVM-DE_VoIPAccountList><AccountList>{items}</AccountList>"
        return {"NewX_AVM-DE_VoIPAccountList": listing + "</X_AVM-DE_VoIPAccountList>"}

    def _client(self, args: dict[str, str]) -> dict[str, str]:
        user, phone, outgoing, internal = CLIENTS[_index(args, len(CLIENTS))]
        values = (user, "fritz.box", "5060", phone, "", outgoing, internal)
        return dict(zip(CLIENT_OUT, values, strict=True))

    def _numbers(self, args: dict[str, str]) -> dict[str, str]:
        items = "".join(
            f"<Item><Number>{a.number}</Number><Type>eVoIP</Type><Index>{i}</Index>"
            f"<Name>SIP{i + 1}</Name></Item>"
            for i, a in enumerate(ACCOUNTS)
        )
        return {"NewNumberList": f"<List>{items}</List>"}

    @property
    def firmware(self) -> str:
        return "154.07.12" if self.old_firmware else "154.07.57"

    # ---- HTTP -----------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        if request.path == "/tr64desc.xml":
            return Response.xml(upnp.tr64_description(self.firmware))
        if request.path == "/igddesc.xml":
            return Response.xml(upnp.igd_description())
        if request.path in _SCPD_PATHS:
            return Response.xml(self._scpd(_SCPD_PATHS[request.path]))
        service = _CONTROL_PATHS.get(request.path)
        if service is None:
            return _error_page(404, "Not Found")
        if request.method != "POST":
            return Response.text("405 Method Not Allowed\n", 405)
        if service.auth and not self._authorized(request):
            with self._lock:
                self.auth_failures += 1
                nonce = secrets.token_hex(8).upper()
                self._nonces = [*self._nonces[-255:], nonce]
            response = _error_page(401, "Unauthorized")
            response.headers["WWW-Authenticate"] = (
                f'Digest realm="{REALM}", nonce="{nonce}", algorithm=MD5, qop="auth"'
            )
            return response
        return self._soap(service.service_type, request)

    def _authorized(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        if not header.lower().startswith("digest "):
            return False
        params = {m[0].lower(): m[1] or m[2] for m in _PARAM.findall(header[7:])}
        if (
            params.get("username") != self.username
            or params.get("realm") != REALM
            or params.get("nonce") not in self._nonces
        ):
            return False
        ha1 = _md5(f"{self.username}:{REALM}:{self._password}")
        ha2 = _md5(f"{request.method}:{params.get('uri', '')}")
        if params.get("qop") == "auth":
            expected = _md5(
                f"{ha1}:{params['nonce']}:{params.get('nc', '')}:"
                f"{params.get('cnonce', '')}:auth:{ha2}"
            )
        else:
            expected = _md5(f"{ha1}:{params['nonce']}:{ha2}")
        return secrets.compare_digest(expected, params.get("response", "").lower())

    def _soap(self, service: str, request: Request) -> Response:
        header = request.headers.get("soapaction", "").strip().strip('"')
        service_type, _, action = header.partition("#")
        try:
            # A loopback test server parsing its own clients' requests.
            root = ET.fromstring(request.body)  # noqa: S314
        except ET.ParseError:
            return _fault(402)
        body = next((el for el in root if el.tag.endswith("}Body") or el.tag == "Body"), None)
        call = body[0] if body is not None and len(body) else None
        if call is None:
            return _fault(401)
        if not action:
            action = call.tag.rpartition("}")[2]
            service_type = call.tag[1:].partition("}")[0]
        with self._lock:
            self.soap_actions[action] += 1
        known = self.services[service].get(action)
        if known is None or service_type != service:
            return _fault(401)
        args = {el.tag.rpartition("}")[2]: (el.text or "") for el in call}
        if any(name not in args for name in known.inputs):
            return _fault(402)
        try:
            values = known.handler(args)
        except UpnpError as err:
            return _fault(err.code)
        inner = "".join(f"<{name}>{escape(values[name])}</{name}>" for name in known.outputs)
        text = f'<u:{action}Response xmlns:u="{service}">\n{inner}\n</u:{action}Response>'
        return Response(200, _ENVELOPE.format(text).encode(), 'text/xml; charset="utf-8"')

    def _scpd(self, service: upnp.Service) -> str:
        actions = {name: (a.inputs, a.outputs)
                   for name, a in self.services[service.service_type].items()}
        tr64 = service.service_type.startswith("urn:dslforum-org:")
        return upnp.scpd(upnp.TR64_SERVICE_NS if tr64 else upnp.IGD_SERVICE_NS, actions,
                         _TYPES, {"X_AVM-DE_VoIPStatus": STATUSES})


_STATUS_INFO = ("NewConnectionStatus", "NewLastConnectionError", "NewUptime")
_SCPD_PATHS = {s.scpd: s for s in upnp.SERVICES}
_CONTROL_PATHS = {s.control: s for s in upnp.SERVICES}


def _error_page(status: int, reason: str) -> Response:
    """The box's web server answers an HTTP error with a small HTML page."""
    title = f"{status} {reason}"
    page = f"<HTML><HEAD><TITLE>{title}</TITLE></HEAD><BODY><H1>{title}</H1></BODY></HTML>\n"
    return Response(status, page.encode(), "text/html")


def _index(args: dict[str, str], size: int) -> int:
    """The one index argument of an action, checked against the table it points into."""
    text = next((v for k, v in args.items() if k.endswith("Index")), "").strip()
    if not text.isdigit():
        raise UpnpError(402)
    if int(text) >= size:
        raise UpnpError(713)
    return int(text)


def _fault(code: int) -> Response:
    detail = (
        "<s:Fault><faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring><detail>"
        '<UPnPError xmlns="urn:schemas-upnp-org:control-1-0">'
        f"<errorCode>{code}</errorCode><errorDescription>{_UPNP_ERRORS.get(code, 'Action Failed')}"
        "</errorDescription></UPnPError></detail></s:Fault>"
    )
    return Response(500, _ENVELOPE.format(detail).encode(), 'text/xml; charset="utf-8"')


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()  # noqa: S324 - RFC 7616 MD5 digest
