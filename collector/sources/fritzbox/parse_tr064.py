"""Pure TR-064 parsing: device description, SCPD, SOAP envelopes and X_VoIP results.

No I/O here. Every document is parsed with entity resolution and network access off.
Spec: "TR-064 Support - X_VoIP" (avm-tr064-x_voip.txt); the X_AVM-DE_VoIPStatus values
are its table 53.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from lxml import etree  # type: ignore[import-untyped, unused-ignore]

from collector.errors import ParseError
from collector.model import Reading, make_tags
from collector.sources.fritzbox.xmldoc import parse_xml

log = logging.getLogger(__name__)

NS_DEVICE = "urn:dslforum-org:device-1-0"
NS_SCPD = "urn:dslforum-org:service-1-0"
NS_SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
NS_SOAP_ENC = "http://schemas.xmlsoap.org/soap/encoding/"
NS_CONTROL = "urn:dslforum-org:control-1-0"
X_VOIP_SERVICE = "urn:dslforum-org:service:X_VoIP:1"

SOURCE = "fritzbox"



def _xml(body: bytes, what: str) -> etree._Element:
    return parse_xml(body, what)


def _local(tag: object) -> str:
    return etree.QName(tag).localname if isinstance(tag, str) else ""


def _child_text(el: etree._Element, name: str) -> str | None:
    """Text of the first child with local name ``name`` (any namespace), stripped."""
    for child in el:
        if _local(child.tag) == name:
            return (child.text or "").strip()
    return None


# --- device description (tr64desc.xml) and SCPD ----------------------------------------------


@dataclass(frozen=True, slots=True)
class Service:
    service_type: str
    service_id: str
    control_url: str
    scpd_url: str


@dataclass(frozen=True, slots=True)
class DeviceDescription:
    """What tr64desc.xml tells: model, firmware and every service of every (sub)device."""

    model: str
    #: systemVersion/Display as the box writes it, e.g. "164.08.02".
    firmware: str | None
    #: The FRITZ!OS version, e.g. "8.02" (systemVersion Minor.Patch).
    fritzos: str | None
    services: tuple[Service, ...]

    def service(self, service_type: str) -> Service | None:
        for s in self.services:
            if s.service_type == service_type:
                return s
        return None


def parse_description(xml: bytes) -> DeviceDescription:
    root = _xml(xml, "tr64desc.xml")
    ns = {"d": NS_DEVICE}
    version = root.find("d:systemVersion", ns)
    firmware = fritzos = None
    if version is not None:
        firmware = version.findtext("d:Display", namespaces=ns)
        minor = (version.findtext("d:Minor", namespaces=ns) or "").strip()
        patch = (version.findtext("d:Patch", namespaces=ns) or "").strip()
        if minor.isdigit() and patch.isdigit():
            fritzos = f"{int(minor)}.{int(patch):02d}"
    model = (root.findtext("d:device/d:modelName", namespaces=ns) or "").strip()
    services: list[Service] = []
    for el in root.iterfind(".//d:service", ns):
        service_type = (el.findtext("d:serviceType", namespaces=ns) or "").strip()
        control = (el.findtext("d:controlURL", namespaces=ns) or "").strip()
        if not service_type or not control:
            raise ParseError(
                "tr64desc.xml: service without serviceType or controlURL",
                part=f"service {service_type or '?'}",
            )
        services.append(
            Service(
                service_type=service_type,
                service_id=(el.findtext("d:serviceId", namespaces=ns) or "").strip(),
                control_url=control,
                scpd_url=(el.findtext("d:SCPDURL", namespaces=ns) or "").strip(),
            )
        )
    return DeviceDescription(
        model=model or "FRITZ!Box",
        firmware=firmware.strip() if firmware else None,
        fritzos=fritzos,
        services=tuple(services),
    )


def parse_scpd_actions(xml: bytes) -> frozenset[str]:
    """The names of the actions a service description (SCPD) offers."""
    root = _xml(xml, "SCPD")
    ns = {"s": NS_SCPD}
    names = {(el.text or "").strip() for el in root.iterfind("s:actionList/s:action/s:name", ns)}
    names.discard("")
    if not names and root.find("s:actionList", ns) is None:
        raise ParseError("SCPD without an actionList", part="scpd/actionList")
    return frozenset(names)


# --- SOAP -------------------------------------------------------------------------------------


def build_soap_request(service_type: str, action: str, args: Mapping[str, str]) -> bytes:
    """The SOAP envelope of one action call (arguments escaped by lxml)."""
    envelope = etree.Element(etree.QName(NS_SOAP_ENV, "Envelope"), nsmap={"s": NS_SOAP_ENV})
    envelope.set(etree.QName(NS_SOAP_ENV, "encodingStyle"), NS_SOAP_ENC)
    body = etree.SubElement(envelope, etree.QName(NS_SOAP_ENV, "Body"))
    call = etree.SubElement(body, etree.QName(service_type, action), nsmap={"u": service_type})
    for name, value in args.items():
        etree.SubElement(call, name).text = value
    return bytes(etree.tostring(envelope, xml_declaration=True, encoding="utf-8"))


@dataclass(frozen=True, slots=True)
class SoapFault:
    """A SOAP fault; ``code`` is the UPnPError errorCode (401 Invalid Action, 606, 714 ...)."""

    code: int | None
    description: str


def parse_soap_fault(xml: bytes) -> SoapFault | None:
    """The fault of a SOAP answer, or None when the answer is no fault (or no XML)."""
    try:
        root = _xml(xml, "SOAP fault")
    except ParseError:
        return None
    fault = root.find(f"{{{NS_SOAP_ENV}}}Body/{{{NS_SOAP_ENV}}}Fault")
    if fault is None:
        return None
    code_text = description = None
    for el in fault.iter():
        name = _local(el.tag)
        if name == "errorCode":
            code_text = (el.text or "").strip()
        elif name == "errorDescription":
            description = (el.text or "").strip()
    if description is None:
        description = (fault.findtext("faultstring") or "").strip()
    code = int(code_text) if code_text and code_text.isdigit() else None
    return SoapFault(code=code, description=description or "SOAP fault")


def parse_soap_response(xml: bytes, action: str) -> dict[str, str]:
    """The out-arguments of ``<u:{action}Response>`` as name -> text."""
    root = _xml(xml, f"{action} answer")
    body = root.find(f"{{{NS_SOAP_ENV}}}Body")
    if body is None:
        raise ParseError(f"{action} answer has no SOAP Body", part="Envelope/Body")
    for el in body:
        if _local(el.tag) == f"{action}Response":
            return {_local(arg.tag): (arg.text or "") for arg in el if _local(arg.tag)}
    raise ParseError(f"{action} answer lacks {action}Response", part="Envelope/Body")


# --- X_VoIP -----------------------------------------------------------------------------------


class VoipStatus(enum.Enum):
    """X_AVM-DE_VoIPStatus (X_VoIP spec, table 53), with the numeric code we store."""

    UNKNOWN = "unknown"  # the spec's "Unknown Error"
    DISABLED = "disabled"
    NOT_REGISTERED = "not registered"
    REGISTERED = "registered"
    CONNECTED = "connected"

    @property
    def code(self) -> int:
        return _VOIP_CODES[self]

    @property
    def label(self) -> str:
        return self.value


#: Codes grow with "how well the account works"; unknown (the box's own error state) is -1.
_VOIP_CODES: dict[VoipStatus, int] = {
    VoipStatus.UNKNOWN: -1,
    VoipStatus.DISABLED: 0,
    VoipStatus.NOT_REGISTERED: 1,
    VoipStatus.REGISTERED: 2,
    VoipStatus.CONNECTED: 3,
}

_unknown_statuses_seen: set[str] = set()


def parse_voip_status(text: str) -> VoipStatus | None:
    """A status text -> VoipStatus; empty -> None; unrecognised -> UNKNOWN (warned once)."""
    value = " ".join(text.split()).lower()
    if not value:
        return None
    try:
        return VoipStatus(value)
    except ValueError:
        if value not in _unknown_statuses_seen and len(_unknown_statuses_seen) < 64:
            _unknown_statuses_seen.add(value)
            log.warning("unrecognised X_AVM-DE_VoIPStatus %r, stored as unknown", value)
        return VoipStatus.UNKNOWN


@dataclass(frozen=True, slots=True)
class VoipAccount:
    """One VoIP account; ``number`` is personal data and stays out of repr."""

    index: int
    status: VoipStatus | None
    number: str | None = field(default=None, repr=False)
    registrar: str | None = None


def _index(text: str | None, part: str) -> int:
    if text is None or not text.strip().isdigit():
        raise ParseError(f"account index {text!r} is not a number", part=part)
    return int(text)


def parse_voip_account_list(text: str) -> tuple[VoipAccount, ...]:
    """NewX_AVM-DE_VoIPAccountList: an XML document carried as a string (spec 2.31)."""
    if not text.strip():
        return ()
    root = _xml(text.strip().encode("utf-8"), "X_AVM-DE_VoIPAccountList")
    accounts: list[VoipAccount] = []
    for pos, el in enumerate(e for e in root.iter() if _local(e.tag) == "Account"):
        part = f"AccountList/Account[{pos}]"
        status_text = _child_text(el, "X_AVM-DE_VoIPStatus")
        accounts.append(
            VoipAccount(
                index=_index(_child_text(el, "VoIPAccountIndex"), part + "/VoIPAccountIndex"),
                status=parse_voip_status(status_text) if status_text is not None else None,
                number=_child_text(el, "VoIPNumber") or None,
                registrar=_child_text(el, "VoIPRegistrar") or None,
            )
        )
    return tuple(accounts)


def parse_voip_numbers(text: str) -> tuple[VoipAccount, ...]:
    """VoIP entries (Type eVoIP) of X_AVM-DE_GetNumbers' NewNumberList (spec 2.28), no status.

    Used to enumerate accounts on firmware without X_AVM-DE_GetVoIPAccounts.
    """
    if not text.strip():
        return ()
    root = _xml(text.strip().encode("utf-8"), "NumberList")
    accounts: list[VoipAccount] = []
    for pos, item in enumerate(e for e in root.iter() if _local(e.tag) == "Item"):
        if _child_text(item, "Type") != "eVoIP":
            continue
        accounts.append(
            VoipAccount(
                index=_index(_child_text(item, "Index"), f"List/Item[{pos}]/Index"),
                status=None,
                number=_child_text(item, "Number") or None,
            )
        )
    return tuple(accounts)


def parse_count(text: str | None, part: str) -> int:
    if text is None or not text.strip().isdigit():
        raise ParseError(f"{part} {text!r} is not a count", part=part)
    return int(text)


# --- readings ----------------------------------------------------------------------------------

VOIP_CLIENTS_DEVICE_ID = "voip"


def voip_device_id(index: int) -> str:
    return f"voip-{index}"


def voip_readings(
    accounts: Iterable[VoipAccount],
    clients: int | None,
    *,
    site: str,
    time: datetime,
    numbers_as_tags: bool = False,
) -> tuple[Reading, ...]:
    """``state`` (name=voip_status) per account with a known status, plus ``voip_clients``.

    Phone numbers become a ``number`` tag only when ``numbers_as_tags`` is set.
    """
    out: list[Reading] = []
    for account in accounts:
        if account.status is None:
            continue  # no status reported: no point, never a made-up code
        number = account.number if numbers_as_tags else None
        out.append(
            Reading(
                measurement="state",
                value=float(account.status.code),
                time=time,
                source=SOURCE,
                site=site,
                device_id=voip_device_id(account.index),
                device=f"VoIP account {account.index}",
                tags=make_tags(name="voip_status", number=number),
                label=account.status.label,
            )
        )
    if clients is not None:
        out.append(
            Reading(
                measurement="voip_clients",
                value=float(clients),
                time=time,
                source=SOURCE,
                site=site,
                device_id=VOIP_CLIENTS_DEVICE_ID,
                device="VoIP",
            )
        )
    return tuple(out)
