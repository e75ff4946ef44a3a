"""TR-064 of the simulated FRITZ!Box: device description, SCPDs and SOAP behind HTTP digest.

Serves ``/tr64desc.xml``, ``/x_voipSCPD.xml`` and ``/deviceinfoSCPD.xml`` without
authentication and the control URLs with digest authentication (RFC 7616, MD5, qop=auth,
realm "F!Box SOAP-Auth"), as FRITZ!OS does. Actions follow ``avm-tr064-x_voip.txt``; an
action the firmware does not have answers the UPnP error 401 "Invalid Action" in a SOAP fault
with HTTP 500. ``old_firmware`` drops the actions added in 2021 (X_AVM-DE_GetVoIPStatus,
X_AVM-DE_GetVoIPAccounts and the status output of X_AVM-DE_GetVoIPAccount).
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

from collector.simulators._http import Clock, Request, Response
from collector.simulators.fritzbox_house import unit_noise

REALM = "F!Box SOAP-Auth"
VOIP = "urn:dslforum-org:service:X_VoIP:1"
DEVICEINFO = "urn:dslforum-org:service:DeviceInfo:1"
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


ACCOUNTS = (
    Account(
        "sip.telefon.example",
        "+49301234567",
        "4930123456701",
        "",
        "stun.telefon.example",
        "registered",
    ),
    Account(
        "sip.telefon.example",
        "+49301234568",
        "4930123456802",
        "",
        "stun.telefon.example",
        "not registered",
    ),
    Account(
        "voip.anbieter.example",
        "+498955501234",
        "mueller-home",
        "proxy.anbieter.example",
        "",
        "disabled",
    ),
)
CLIENTS = (
    ("ipphone620", "Büro IP-Telefon", "+49301234567", "620"),
    ("smartphone621", "Smartphone", "+49301234568", "621"),
)


class UpnpError(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(_UPNP_ERRORS.get(code, "Action Failed"))
        self.code = code


Handler = Callable[[dict[str, str]], dict[str, str]]
# An action: input arguments, output arguments with their data type, and the handler.
# Every argument is "New" + the name of its state variable.
Action = tuple[tuple[str, ...], tuple[tuple[str, str], ...], Handler]
STRING = "string"


def _strings(*names: str) -> tuple[tuple[str, str], ...]:
    return tuple((name, STRING) for name in names)


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
        self.services: dict[str, dict[str, Action]] = {
            VOIP: self._voip_actions(),
            DEVICEINFO: self._deviceinfo_actions(),
        }

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

    def _account(self, args: dict[str, str]) -> tuple[int, Account]:
        index = _index(args, "NewVoIPAccountIndex", len(ACCOUNTS))
        return index, ACCOUNTS[index]

    def _voip_actions(self) -> dict[str, Action]:
        index = ("NewVoIPAccountIndex",)

        def account(args: dict[str, str]) -> dict[str, str]:
            i, acc = self._account(args)
            out = {
                "NewVoIPRegistrar": acc.registrar,
                "NewVoIPNumber": acc.number,
                "NewVoIPUsername": acc.username,
                "NewVoIPOutboundProxy": acc.outbound_proxy,
                "NewVoIPSTUNServer": acc.stun,
            }
            if not self.old_firmware:
                out["NewX_AVM-DE_VoIPStatus"] = self.status(i)
            return out

        def accounts(args: dict[str, str]) -> dict[str, str]:
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

        def client(args: dict[str, str]) -> dict[str, str]:
            user, phone, outgoing, internal = CLIENTS[
                _index(args, "NewX_AVM-DE_ClientIndex", len(CLIENTS))
            ]
            return {
                "NewX_AVM-DE_ClientUsername": user,
                "NewX_AVM-DE_ClientRegistrar": "fritz.box",
                "NewX_AVM-DE_ClientRegistrarPort": "5060",
                "NewX_AVM-DE_PhoneName": phone,
                "NewX_AVM-DE_ClientId": "",
                "NewX_AVM-DE_OutGoingNumber": outgoing,
                "NewX_AVM-DE_InternalNumber": internal,
            }

        def numbers(args: dict[str, str]) -> dict[str, str]:
            items = "".join(
                f"<Item><Number>{a.number}</Number><Type>eVoIP</Type><Index>{i}</Index>"
                f"<Name>SIP{i + 1}</Name></Item>"
                for i, a in enumerate(ACCOUNTS)
            )
            return {"NewNumberList": f"<List>{items}</List>"}

        def enable_area_code(args: dict[str, str]) -> dict[str, str]:
            self._account(args)
            return {"NewVoIPEnableAreaCode": "1"}

        def fixed(**values: str) -> Handler:
            return lambda args: {f"New{k.replace('__', '-')}": v for k, v in values.items()}

        status = (("NewX_AVM-DE_VoIPStatus", STRING),)
        account_out = _strings(
            "NewVoIPRegistrar",
            "NewVoIPNumber",
            "NewVoIPUsername",
            "NewVoIPOutboundProxy",
            "NewVoIPSTUNServer",
        )
        if not self.old_firmware:
            account_out += status
        actions: dict[str, Action] = {
            "GetInfo": (
                (),
                (("NewFaxT38Enable", "boolean"), ("NewVoiceCoding", STRING)),
                fixed(FaxT38Enable="0", VoiceCoding="auto"),
            ),
            "GetExistingVoIPNumbers": (
                (),
                (("NewExistingVoIPNumbers", "ui2"),),
                fixed(ExistingVoIPNumbers=str(len(ACCOUNTS))),
            ),
            "GetMaxVoIPNumbers": ((), (("NewMaxVoIPNumbers", "ui2"),), fixed(MaxVoIPNumbers="20")),
            "GetVoIPEnableAreaCode": (
                index,
                (("NewVoIPEnableAreaCode", "boolean"),),
                enable_area_code,
            ),
            "X_AVM-DE_GetVoIPCommonAreaCode": (
                (),
                _strings("NewX_AVM-DE_OKZ", "NewX_AVM-DE_OKZPrefix"),
                fixed(X_AVM__DE_OKZ="30", X_AVM__DE_OKZPrefix="0"),
            ),
            "X_AVM-DE_GetVoIPCommonCountryCode": (
                (),
                _strings("NewX_AVM-DE_LKZ", "NewX_AVM-DE_LKZPrefix"),
                fixed(X_AVM__DE_LKZ="49", X_AVM__DE_LKZPrefix="00"),
            ),
            "X_AVM-DE_GetNumberOfClients": (
                (),
                (("NewX_AVM-DE_NumberOfClients", "ui2"),),
                fixed(X_AVM__DE_NumberOfClients=str(len(CLIENTS))),
            ),
            "X_AVM-DE_GetClient2": (
                ("NewX_AVM-DE_ClientIndex",),
                _strings(
                    "NewX_AVM-DE_ClientUsername",
                    "NewX_AVM-DE_ClientRegistrar",
                    "NewX_AVM-DE_ClientRegistrarPort",
                    "NewX_AVM-DE_PhoneName",
                    "NewX_AVM-DE_ClientId",
                    "NewX_AVM-DE_OutGoingNumber",
                    "NewX_AVM-DE_InternalNumber",
                ),
                client,
            ),
            "X_AVM-DE_GetNumberOfNumbers": (
                (),
                (("NewNumberOfNumbers", "ui4"),),
                fixed(NumberOfNumbers=str(len(ACCOUNTS))),
            ),
            "X_AVM-DE_GetNumbers": ((), _strings("NewNumberList"), numbers),
            "X_AVM-DE_GetVoIPAccount": (index, account_out, account),
            "X_AVM-DE_GetVoIPAccounts": ((), _strings("NewX_AVM-DE_VoIPAccountList"), accounts),
            "X_AVM-DE_GetVoIPStatus": (
                index,
                status,
                lambda args: {"NewX_AVM-DE_VoIPStatus": self.status(self._account(args)[0])},
            ),
        }
        if self.old_firmware:
            for name in NEW_IN_2021:
                del actions[name]
        return actions

    def _deviceinfo_actions(self) -> dict[str, Action]:
        fields = {
            "NewManufacturerName": "AVM",
            "NewModelName": "FRITZ!Box 7590",
            "NewDescription": "FRITZ!Box 7590 (simulated)",
            "NewProductClass": "AVMFB",
            "NewSerialNumber": "3C3786000000",
            "NewSoftwareVersion": self.firmware,
            "NewHardwareVersion": "FRITZ!Box 7590",
            "NewSpecVersion": "1.0",
        }
        return {"GetInfo": ((), _strings(*fields), lambda args: dict(fields))}

    @property
    def firmware(self) -> str:
        return "154.07.12" if self.old_firmware else "154.07.57"

    # ---- HTTP -----------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        if request.path == "/tr64desc.xml":
            return Response.xml(self._description())
        if request.path in _SCPD_PATHS:
            return Response.xml(self._scpd(_SCPD_PATHS[request.path]))
        service = _CONTROL_PATHS.get(request.path)
        if service is None:
            return Response.text("404 Not Found\n", 404)
        if request.method != "POST":
            return Response.text("405 Method Not Allowed\n", 405)
        if not self._authorized(request):
            with self._lock:
                self.auth_failures += 1
                nonce = secrets.token_hex(8).upper()
                self._nonces = [*self._nonces[-255:], nonce]
            response = Response.text("401 Unauthorized\n", 401)
            response.headers["WWW-Authenticate"] = (
                f'Digest realm="{REALM}", nonce="{nonce}", algorithm=MD5, qop="auth"'
            )
            return response
        return self._soap(service, request)

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
        self.soap_actions[action] += 1
        known = self.services[service].get(action)
        if known is None or service_type != service:
            return _fault(401)
        inputs, outputs, handler = known
        args = {el.tag.rpartition("}")[2]: (el.text or "") for el in call}
        if any(name not in args for name in inputs):
            return _fault(402)
        try:
            values = handler(args)
        except UpnpError as err:
            return _fault(err.code)
        inner = "".join(f"<{name}>{escape(values[name])}</{name}>" for name, _ in outputs)
        text = f'<u:{action}Response xmlns:u="{service}">\n{inner}\n</u:{action}Response>'
        return Response(200, _ENVELOPE.format(text).encode(), 'text/xml; charset="utf-8"')

    def _description(self) -> str:
        services = "".join(
            f"<service><serviceType>{stype}</serviceType>"
            f"<serviceId>urn:{name}-com:serviceId:{name}1</serviceId>"
            f"<controlURL>{control}</controlURL><eventSubURL>{control}</eventSubURL>"
            f"<SCPDURL>{scpd}</SCPDURL></service>"
            for stype, name, control, scpd in _SERVICES
        )
        major, minor, patch = self.firmware.split(".")
        return (
            '<?xml version="1.0"?>\n<root xmlns="urn:dslforum-org:device-1-0">'
            "<specVersion><major>1</major><minor>0</minor></specVersion>"
            f"<systemVersion><HW>226</HW><Major>{int(major)}</Major><Minor>{int(minor)}</Minor>"
            f"<Patch>{int(patch)}</Patch><Buildnumber>100000</Buildnumber>"
            f"<Display>{self.firmware}</Display></systemVersion>"
            "<device><deviceType>urn:dslforum-org:device:InternetGatewayDevice:1</deviceType>"
            "<friendlyName>FRITZ!Box 7590 (simulated)</friendlyName><manufacturer>AVM"
            "</manufacturer><modelName>FRITZ!Box 7590</modelName>"
            "<UDN>uuid:75802409-bccb-40e7-8e6c-3c3786000000</UDN>"
            f"<serviceList>{services}</serviceList></device></root>\n"
        )

    def _scpd(self, service: str) -> str:
        actions, variables = [], {}
        for name, (inputs, outputs, _) in self.services[service].items():
            args = [(arg, "in", arg[3:]) for arg in inputs]
            args += [(arg, "out", arg[3:]) for arg, _ in outputs]
            variables.update({arg[3:]: kind for arg, kind in outputs})
            variables.update({arg[3:]: "ui2" for arg in inputs})
            actions.append(
                f"<action><name>{name}</name><argumentList>"
                + "".join(
                    f"<argument><name>{a}</name><direction>{d}</direction>"
                    f"<relatedStateVariable>{v}</relatedStateVariable></argument>"
                    for a, d, v in args
                )
                + "</argumentList></action>"
            )
        states = "".join(
            f'<stateVariable sendEvents="no"><name>{var}</name><dataType>{kind}</dataType>'
            + (
                "<allowedValueList>"
                + "".join(f"<allowedValue>{s}</allowedValue>" for s in STATUSES)
                + "</allowedValueList>"
                if var == "X_AVM-DE_VoIPStatus"
                else ""
            )
            + "</stateVariable>"
            for var, kind in variables.items()
        )
        return (
            '<?xml version="1.0"?>\n<scpd xmlns="urn:dslforum-org:service-1-0">'
            "<specVersion><major>1</major><minor>0</minor></specVersion>"
            f"<actionList>{''.join(actions)}</actionList>"
            f"<serviceStateTable>{states}</serviceStateTable></scpd>\n"
        )


_SERVICES = (
    (DEVICEINFO, "DeviceInfo", "/upnp/control/deviceinfo", "/deviceinfoSCPD.xml"),
    (VOIP, "X_VoIP", "/upnp/control/x_voip", "/x_voipSCPD.xml"),
)
_SCPD_PATHS = {scpd: stype for stype, _, _, scpd in _SERVICES}
_CONTROL_PATHS = {control: stype for stype, _, control, _ in _SERVICES}


def _index(args: dict[str, str], name: str, size: int) -> int:
    text = args.get(name, "").strip()
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
