"""TR-064 X_VoIP: parsing (with the real captures) and the client against a fake box that
checks HTTP digest authentication itself."""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from xml.sax.saxutils import escape

import httpx
import pytest
from lxml import etree

from collector.errors import AuthError, ParseError, PermanentError, TransientError
from collector.model import Reading
from collector.sources.fritzbox.parse_tr064 import (
    X_VOIP_SERVICE,
    VoipAccount,
    VoipStatus,
    build_soap_request,
    parse_description,
    parse_scpd_actions,
    parse_soap_fault,
    parse_soap_response,
    parse_voip_account_list,
    parse_voip_numbers,
    voip_readings,
)
from collector.sources.fritzbox.tr064 import (
    GET_NUMBER_OF_CLIENTS,
    GET_NUMBERS,
    GET_VOIP_ACCOUNTS,
    GET_VOIP_STATUS,
    MissingActionError,
    Tr064Client,
    VoipSnapshot,
    default_tr064_url,
)
from tests.sources.fritzbox.test_client import PASSWORD, USERNAME, make_config, run

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
ALL_ACTIONS = frozenset(
    {GET_VOIP_ACCOUNTS, GET_VOIP_STATUS, GET_NUMBERS, GET_NUMBER_OF_CLIENTS, "GetInfo"}
)

DESCRIPTION = """<?xml version="1.0"?>
<root xmlns="urn:dslforum-org:device-1-0">
<specVersion><major>1</major><minor>0</minor></specVersion>
<systemVersion><HW>226</HW><Major>154</Major><Minor>7</Minor><Patch>57</Patch>
<Buildnumber>1</Buildnumber><Display>154.07.57</Display></systemVersion>
<device><deviceType>urn:dslforum-org:device:InternetGatewayDevice:1</deviceType>
<modelName>FRITZ!Box 7590</modelName>
<serviceList>
<service><serviceType>urn:dslforum-org:service:DeviceInfo:1</serviceType>
<serviceId>urn:DeviceInfo-com:serviceId:DeviceInfo1</serviceId>
<controlURL>/upnp/control/deviceinfo</controlURL><eventSubURL>/upnp/control/deviceinfo</eventSubURL>
<SCPDURL>/deviceinfoSCPD.xml</SCPDURL></service>
<service><serviceType>urn:dslforum-org:service:X_VoIP:1</serviceType>
<serviceId>urn:X_VoIP-com:serviceId:X_VoIP1</serviceId>
<controlURL>/upnp/control/x_voip</controlURL><eventSubURL>/upnp/control/x_voip</eventSubURL>
<SCPDURL>/x_voipSCPD.xml</SCPDURL></service>
</serviceList></device></root>
"""


def scpd(actions: frozenset[str]) -> bytes:
    items = "".join(f"<action><name>{a}</name></action>" for a in sorted(actions))
    return (
        '<?xml version="1.0"?><scpd xmlns="urn:dslforum-org:service-1-0">'
        f"<actionList>{items}</actionList><serviceStateTable/></scpd>"
    ).encode()


def soap_ok(action: str, args: dict[str, str]) -> bytes:
    inner = "".join(f"<{k}>{escape(v)}</{k}>" for k, v in args.items())
    return (
        f'<?xml version="1.0"?><s:Envelope xmlns:s="{SOAP_NS}" '
        's:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body>'
        f'<u:{action}Response xmlns:u="{X_VOIP_SERVICE}">{inner}</u:{action}Response>'
        "</s:Body></s:Envelope>"
    ).encode()


def soap_fault(code: int, description: str) -> bytes:
    return (
        f'<?xml version="1.0"?><s:Envelope xmlns:s="{SOAP_NS}" '
        's:encodingStyle="http://schemas.xmlsoap.org/soap/encoding/"><s:Body><s:Fault>'
        "<faultcode>s:Client</faultcode><faultstring>UPnPError</faultstring><detail>"
        '<UPnPError xmlns="urn:dslforum-org:control-1-0">'
        f"<errorCode>{code}</errorCode><errorDescription>{description}</errorDescription>"
        "</UPnPError></detail></s:Fault></s:Body></s:Envelope>"
    ).encode()


def account_list(accounts: list[tuple[int, str, str]]) -> str:
    rows = "".join(
        f"<Account><VoIPAccountIndex>{i}</VoIPAccountIndex><VoIPRegistrar>sip.example.net"
        f"</VoIPRegistrar><VoIPNumber>{number}</VoIPNumber><VoIPUsername>{number}"
        "</VoIPUsername><VoIPOutboundProxy></VoIPOutboundProxy><VoIPSTUNServer></VoIPSTUNServer>"
        f"<X_AVM-DE_VoIPStatus>{status}</X_AVM-DE_VoIPStatus></Account>"
        for i, number, status in accounts
    )
    return f"<X_AVM-DE_VoIPAccountList><AccountList>{rows}</AccountList></X_AVM-DE_VoIPAccountList>"


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


class FakeTr064:
    """tr64desc.xml, the X_VoIP SCPD and its control URL behind HTTP digest auth."""

    realm = "F!Box SOAP-Auth"

    def __init__(
        self,
        *,
        password: str = PASSWORD,
        actions: frozenset[str] = ALL_ACTIONS,
        invalid: frozenset[str] = frozenset(),
    ) -> None:
        self.password = password
        self.actions = actions
        self.invalid = invalid  # offered by the SCPD but answered "Invalid Action"
        self.accounts = [
            (0, "+4930123456", "registered"),
            (1, "+4930654321", "not registered"),
            (3, "+4940111222", "disabled"),
        ]
        self.clients = 2
        self.faults: dict[str, int] = {}
        self.scpd_status = 200
        self.requests: list[httpx.Request] = []
        self.calls: list[str] = []
        self.unauthorised = 0
        self.nonce = secrets.token_hex(8)

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        if path == "/tr64desc.xml":
            return httpx.Response(200, content=DESCRIPTION.encode())
        if path == "/x_voipSCPD.xml":
            if self.scpd_status != 200:
                return httpx.Response(self.scpd_status)
            return httpx.Response(200, content=scpd(self.actions | self.invalid))
        if path == "/upnp/control/x_voip" and request.method == "POST":
            if not self._authorised(request):
                self.unauthorised += 1
                challenge = f'Digest realm="{self.realm}", nonce="{self.nonce}", qop="auth"'
                return httpx.Response(401, headers={"WWW-Authenticate": challenge})
            return self._soap(request)
        return httpx.Response(404)

    def _authorised(self, request: httpx.Request) -> bool:
        header = request.headers.get("authorization", "")
        if not header.startswith("Digest "):
            return False
        fields = {
            m.group(1): m.group(2) if m.group(2) is not None else m.group(3)
            for m in re.finditer(r'(\w+)=(?:"([^"]*)"|([^,\s]*))', header[7:])
        }
        ha1 = md5(f"{USERNAME}:{self.realm}:{self.password}")
        ha2 = md5(f"{request.method}:{fields.get('uri')}")
        expected = md5(f"{ha1}:{self.nonce}:{fields.get('nc')}:{fields.get('cnonce')}:auth:{ha2}")
        return (
            fields.get("username") == USERNAME
            and fields.get("realm") == self.realm
            and fields.get("response") == expected
        )

    def _soap(self, request: httpx.Request) -> httpx.Response:
        service, _, action = request.headers["soapaction"].strip('"').partition("#")
        assert service == X_VOIP_SERVICE
        self.calls.append(action)
        envelope = etree.fromstring(request.content)
        call = envelope.find(f"{{{SOAP_NS}}}Body/{{{X_VOIP_SERVICE}}}{action}")
        assert call is not None
        args = {child.tag: child.text or "" for child in call}
        if action in self.invalid or action not in self.actions:
            return httpx.Response(500, content=soap_fault(401, "Invalid Action"))
        if action in self.faults:
            return httpx.Response(500, content=soap_fault(self.faults[action], "error"))
        if action == GET_VOIP_ACCOUNTS:
            out = {"NewX_AVM-DE_VoIPAccountList": account_list(self.accounts)}
        elif action == GET_VOIP_STATUS:
            index = int(args["NewVoIPAccountIndex"])
            status = next(s for i, _, s in self.accounts if i == index)
            out = {"NewX_AVM-DE_VoIPStatus": status}
        elif action == GET_NUMBERS:
            items = "".join(
                f"<Item><Number>{n}</Number><Type>eVoIP</Type><Index>{i}</Index>"
                f"<Name>SIP{i}</Name></Item>"
                for i, n, _ in self.accounts
            )
            out = {
                "NewNumberList": "<List><Item><Number>0301</Number><Type>ePOTS</Type>"
                f"<Index>0</Index><Name>POTS</Name></Item>{items}</List>"
            }
        elif action == GET_NUMBER_OF_CLIENTS:
            out = {"NewX_AVM-DE_NumberOfClients": str(self.clients)}
        else:
            out = {}
        return httpx.Response(200, content=soap_ok(action, out))


def make_tr064(fake: FakeTr064, **config: Any) -> Tr064Client:
    http = httpx.AsyncClient(transport=httpx.MockTransport(fake.handler))
    return Tr064Client(make_config(url="http://fritz.test", **config), http)


def snapshot(client: Tr064Client, polls: int = 1) -> VoipSnapshot:
    async def go() -> VoipSnapshot:
        try:
            result = await client.voip()
            for _ in range(polls - 1):
                result = await client.voip()
            return result
        finally:
            await client._http.aclose()

    return run(go())


def states(readings: tuple[Reading, ...]) -> list[tuple[str, float, str | None]]:
    return [(r.device_id, r.value, r.label) for r in readings if r.measurement == "state"]


# --- conformance with the real captures -----------------------------------------------------


def test_real_tr64desc_gives_the_voip_control_url(shared_dir: Path) -> None:
    desc = parse_description(
        (shared_dir / "fixtures/fritzbox/tr064-tr64desc-fritzos802.xml").read_bytes()
    )
    assert desc.model == "FRITZ!Box 7530"
    assert desc.firmware == "164.08.02"
    assert desc.fritzos == "8.02"
    voip = desc.service(X_VOIP_SERVICE)
    assert voip is not None
    assert voip.control_url == "/upnp/control/x_voip"
    assert voip.scpd_url == "/x_voipSCPD.xml"
    assert voip.service_id == "urn:X_VoIP-com:serviceId:X_VoIP1"
    # services of the embedded LAN/WAN devices are listed too
    assert desc.service("urn:dslforum-org:service:WANIPConnection:1") is not None


def test_real_scpd_offers_the_actions_and_statuses_we_use(shared_dir: Path) -> None:
    body = (shared_dir / "fixtures/fritzbox/tr064-x_voipSCPD-fritzos802.xml").read_bytes()
    actions = parse_scpd_actions(body)
    for name in (
        GET_VOIP_ACCOUNTS,
        GET_VOIP_STATUS,
        GET_NUMBER_OF_CLIENTS,
        GET_NUMBERS,
        "X_AVM-DE_GetVoIPCommonAreaCode",
        "GetVoIPCommonAreaCode",
    ):
        assert name in actions
    ns = {"s": "urn:dslforum-org:service-1-0"}
    root = etree.fromstring(body)

    def arguments(action: str) -> list[tuple[str, str]]:
        (el,) = root.xpath(f"s:actionList/s:action[s:name='{action}']", namespaces=ns)
        return [
            (a.findtext("s:name", namespaces=ns), a.findtext("s:direction", namespaces=ns))
            for a in el.iterfind("s:argumentList/s:argument", ns)
        ]

    assert arguments(GET_VOIP_ACCOUNTS) == [("NewX_AVM-DE_VoIPAccountList", "out")]
    assert arguments(GET_VOIP_STATUS) == [
        ("NewVoIPAccountIndex", "in"),
        ("NewX_AVM-DE_VoIPStatus", "out"),
    ]
    assert arguments(GET_NUMBER_OF_CLIENTS) == [("NewX_AVM-DE_NumberOfClients", "out")]
    assert arguments(GET_NUMBERS) == [("NewNumberList", "out")]
    allowed = root.xpath(
        "s:serviceStateTable/s:stateVariable[s:name='X_AVM-DE_VoIPStatus']"
        "/s:allowedValueList/s:allowedValue/text()",
        namespaces=ns,
    )
    assert sorted(allowed) == sorted(s.value for s in VoipStatus)


# --- pure parsing -------------------------------------------------------------------------------


def test_soap_request_is_escaped_and_namespaced() -> None:
    body = build_soap_request(X_VOIP_SERVICE, GET_VOIP_STATUS, {"NewVoIPAccountIndex": "<&>"})
    root = etree.fromstring(body)
    call = root.find(f"{{{SOAP_NS}}}Body/{{{X_VOIP_SERVICE}}}{GET_VOIP_STATUS}")
    assert call is not None
    assert call.findtext("NewVoIPAccountIndex") == "<&>"
    assert root.get(f"{{{SOAP_NS}}}encodingStyle") == "http://schemas.xmlsoap.org/soap/encoding/"


def test_soap_response_and_fault() -> None:
    assert parse_soap_response(soap_ok("A", {"NewX": "1", "NewY": ""}), "A") == {
        "NewX": "1",
        "NewY": "",
    }
    with pytest.raises(ParseError, match="lacks BResponse"):
        parse_soap_response(soap_ok("A", {}), "B")
    fault = parse_soap_fault(soap_fault(401, "Invalid Action"))
    assert fault is not None
    assert (fault.code, fault.description) == (401, "Invalid Action")
    assert parse_soap_fault(soap_ok("A", {})) is None
    assert parse_soap_fault(b"<html>") is None


def test_account_list_statuses_and_numbers() -> None:
    accounts = parse_voip_account_list(
        account_list([(0, "+49301", "connected"), (2, "+49302", "Not  Registered")])
    )
    assert accounts == (
        VoipAccount(0, VoipStatus.CONNECTED, "+49301", "sip.example.net"),
        VoipAccount(2, VoipStatus.NOT_REGISTERED, "+49302", "sip.example.net"),
    )
    assert "+49301" not in repr(accounts)
    assert parse_voip_account_list("") == ()
    with pytest.raises(ParseError, match="VoIPAccountIndex"):
        parse_voip_account_list(
            "<AccountList><Account><VoIPAccountIndex>x</VoIPAccountIndex></Account></AccountList>"
        )


def test_unrecognised_status_is_unknown_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="collector")
    for _ in range(3):
        (account,) = parse_voip_account_list(account_list([(0, "1", "rebooting")]))
        assert account.status is VoipStatus.UNKNOWN
    assert caplog.text.count("unrecognised X_AVM-DE_VoIPStatus 'rebooting'") == 1


def test_voip_numbers_list_keeps_only_voip_entries() -> None:
    text = (
        "<List><Item><Number>0301</Number><Type>ePOTS</Type><Index>0</Index></Item>"
        "<Item><Number>+49302</Number><Type>eVoIP</Type><Index>1</Index></Item></List>"
    )
    assert parse_voip_numbers(text) == (VoipAccount(1, None, "+49302"),)


def test_voip_readings_exact() -> None:
    accounts = (
        VoipAccount(0, VoipStatus.CONNECTED, "+49301"),
        VoipAccount(1, VoipStatus.REGISTERED, "+49302"),
        VoipAccount(2, VoipStatus.NOT_REGISTERED, "+49303"),
        VoipAccount(3, VoipStatus.DISABLED, "+49304"),
        VoipAccount(4, VoipStatus.UNKNOWN, "+49305"),
        VoipAccount(5, None, "+49306"),  # no status reported: no point
    )
    readings = voip_readings(accounts, 3, site="home", time=T0)
    assert [
        (r.measurement, r.device_id, r.device, r.value, r.label, r.tags, r.time) for r in readings
    ] == [
        ("state", "voip-0", "VoIP account 0", 3.0, "connected", (("name", "voip_status"),), T0),
        ("state", "voip-1", "VoIP account 1", 2.0, "registered", (("name", "voip_status"),), T0),
        (
            "state",
            "voip-2",
            "VoIP account 2",
            1.0,
            "not registered",
            (("name", "voip_status"),),
            T0,
        ),
        ("state", "voip-3", "VoIP account 3", 0.0, "disabled", (("name", "voip_status"),), T0),
        ("state", "voip-4", "VoIP account 4", -1.0, "unknown", (("name", "voip_status"),), T0),
        ("voip_clients", "voip", "VoIP", 3.0, None, (), T0),
    ]
    assert all((r.source, r.site) == ("fritzbox", "home") for r in readings)
    tagged = voip_readings(accounts[:1], None, site="home", time=T0, numbers_as_tags=True)
    assert [r.tags for r in tagged] == [(("name", "voip_status"), ("number", "+49301"))]


def test_default_tr064_url() -> None:
    assert default_tr064_url("http://fritz.box") == "http://fritz.box:49000"
    assert default_tr064_url("https://fritz.box:8443/x") == "https://fritz.box:49443"
    assert default_tr064_url("http://[fd00::1]:80") == "http://[fd00::1]:49000"


# --- the client ----------------------------------------------------------------------------------


def test_voip_over_digest_auth() -> None:
    fake = FakeTr064()
    result = snapshot(make_tr064(fake))
    assert result.clients == 2
    assert [(a.index, a.status) for a in result.accounts] == [
        (0, VoipStatus.REGISTERED),
        (1, VoipStatus.NOT_REGISTERED),
        (3, VoipStatus.DISABLED),
    ]
    assert fake.calls == [GET_VOIP_ACCOUNTS, GET_NUMBER_OF_CLIENTS]
    # challenged once; the second call reuses the nonce with the next nonce count
    assert fake.unauthorised == 1
    soap = [r for r in fake.requests if r.method == "POST"]
    assert len(soap) == 3
    assert "nc=00000002" in soap[2].headers["authorization"]
    assert all(urlsplit(str(r.url)).netloc == "fritz.test:49000" for r in fake.requests)
    for r in fake.requests:
        assert PASSWORD not in str(r.headers)
        assert PASSWORD.encode() not in r.content


def test_description_and_scpd_are_read_once() -> None:
    fake = FakeTr064()
    snapshot(make_tr064(fake), polls=3)
    paths = [r.url.path for r in fake.requests if r.method == "GET"]
    assert paths == ["/tr64desc.xml", "/x_voipSCPD.xml"]
    assert fake.calls == [GET_VOIP_ACCOUNTS, GET_NUMBER_OF_CLIENTS] * 3


def test_action_absent_from_scpd_is_skipped_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="collector")
    fake = FakeTr064(actions=ALL_ACTIONS - {GET_NUMBER_OF_CLIENTS})
    client = make_tr064(fake)
    result = snapshot(client, polls=3)
    assert result.clients is None
    assert GET_NUMBER_OF_CLIENTS not in fake.calls
    assert client.missing_actions == {GET_NUMBER_OF_CLIENTS}
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "FRITZ!Box home: TR-064 action X_AVM-DE_GetNumberOfClients is not supported by this "
        "firmware (absent from the service description); skipping it"
    ]


def test_invalid_action_fault_is_skipped_with_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="collector")
    fake = FakeTr064(invalid=frozenset({GET_NUMBER_OF_CLIENTS}))
    result = snapshot(make_tr064(fake), polls=3)
    assert result.clients is None
    assert fake.calls.count(GET_NUMBER_OF_CLIENTS) == 1
    assert [r.getMessage() for r in caplog.records] == [
        "FRITZ!Box home: TR-064 action X_AVM-DE_GetNumberOfClients is not supported by this "
        "firmware (UPnPError 401 Invalid Action); skipping it"
    ]


def test_older_firmware_enumerates_numbers_and_asks_each_status(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="collector")
    fake = FakeTr064(actions=ALL_ACTIONS - {GET_VOIP_ACCOUNTS})
    result = snapshot(make_tr064(fake), polls=2)
    assert [(a.index, a.status) for a in result.accounts] == [
        (0, VoipStatus.REGISTERED),
        (1, VoipStatus.NOT_REGISTERED),
        (3, VoipStatus.DISABLED),
    ]
    assert fake.calls[:5] == [
        GET_NUMBERS,
        GET_VOIP_STATUS,
        GET_VOIP_STATUS,
        GET_VOIP_STATUS,
        GET_NUMBER_OF_CLIENTS,
    ]
    assert len(caplog.records) == 1


def test_firmware_without_any_account_action_gives_no_accounts() -> None:
    fake = FakeTr064(actions=frozenset({GET_NUMBER_OF_CLIENTS}))
    result = snapshot(make_tr064(fake))
    assert result == VoipSnapshot((), 2)


def test_unreadable_scpd_means_actions_are_tried(caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeTr064(invalid=frozenset({GET_NUMBER_OF_CLIENTS}))
    fake.scpd_status = 404
    result = snapshot(make_tr064(fake), polls=2)
    assert len(result.accounts) == 3
    assert result.clients is None
    assert fake.calls == [GET_VOIP_ACCOUNTS, GET_NUMBER_OF_CLIENTS, GET_VOIP_ACCOUNTS]


def test_wrong_password_is_one_auth_error_then_no_contact() -> None:
    fake = FakeTr064(password="another")
    client = make_tr064(fake)

    async def go() -> None:
        try:
            with pytest.raises(AuthError, match="user 'collector' was refused") as info:
                await client.voip()
            assert PASSWORD not in str(info.value)
            seen = len(fake.requests)
            with pytest.raises(AuthError):
                await client.voip()
            assert len(fake.requests) == seen
        finally:
            await client._http.aclose()

    run(go())
    assert fake.calls == []


@pytest.mark.parametrize(
    ("code", "error", "text"),
    [
        (606, AuthError, "the user needs the Phone (Telefonie) right"),
        (820, TransientError, "internal error of the box"),
        (501, TransientError, "action failed"),
        (714, PermanentError, "no such entry"),
        (899, PermanentError, "UPnPError 899: error"),
    ],
)
def test_faults_are_mapped(code: int, error: type[Exception], text: str) -> None:
    fake = FakeTr064()
    fake.faults[GET_VOIP_ACCOUNTS] = code
    client = make_tr064(fake)

    async def go() -> None:
        try:
            with pytest.raises(error, match=re.escape(text)) as info:
                await client.voip()
            assert str(info.value).startswith("FRITZ!Box home: TR-064 X_AVM-DE_GetVoIPAccounts")
            assert not isinstance(info.value, MissingActionError)
        finally:
            await client._http.aclose()

    run(go())


def test_no_voip_service_is_a_permanent_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        body = DESCRIPTION.replace("X_VoIP:1", "X_Other:1").encode()
        return httpx.Response(200, content=body)

    client = Tr064Client(make_config(), httpx.AsyncClient(transport=httpx.MockTransport(handler)))

    async def go() -> None:
        try:
            with pytest.raises(PermanentError, match="offers no urn:dslforum-org:service:X_VoIP:1"):
                await client.voip()
        finally:
            await client._http.aclose()

    run(go())


def test_configured_tr064_url_is_used() -> None:
    fake = FakeTr064()
    client = make_tr064(fake, tr064_url="https://box.test:12345/")
    assert client.base_url == "https://box.test:12345"
    snapshot(client)
    assert {urlsplit(str(r.url)).netloc for r in fake.requests} == {"box.test:12345"}
