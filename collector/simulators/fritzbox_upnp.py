"""The UPnP documents of the simulated FRITZ!Box: the two device descriptions and the SCPDs.

A FRITZ!Box answers on port 49000 with two device descriptions, and clients such as
fritzconnection read both: ``/tr64desc.xml`` (TR-064, namespace ``urn:dslforum-org``:
the root InternetGatewayDevice with DeviceInfo, X_VoIP and the other services, a LANDevice
and a WANDevice with a WANConnectionDevice below it) and ``/igddesc.xml`` (the UPnP IGD of
``urn:schemas-upnp-org``, used without authentication, with the WAN services below a
WANDevice and a WANConnectionDevice). Each service names its SCPD, an XML list of its
actions with their arguments and the state variables that type them. The layout follows
what FRITZ!OS 8 serves; the box simulated here has only the services listed below.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from xml.sax.saxutils import escape

TR64_DEVICE_NS = "urn:dslforum-org:device-1-0"
TR64_SERVICE_NS = "urn:dslforum-org:service-1-0"
IGD_DEVICE_NS = "urn:schemas-upnp-org:device-1-0"
IGD_SERVICE_NS = "urn:schemas-upnp-org:service-1-0"
MODEL = "FRITZ!Box 7590"
UDN = "uuid:75802409-bccb-40e7-8e6c-3c3786000000"
IGD_UDN = "uuid:75802409-bccb-40e7-8e6d-3c3786000000"


@dataclass(frozen=True, slots=True)
class Service:
    service_type: str
    service_id: str
    control: str
    scpd: str
    #: TR-064 services need digest authentication; the IGD's are open to the LAN.
    auth: bool = True


@dataclass(frozen=True, slots=True)
class Device:
    device_type: str
    #: the part of the friendly and model names before the model ("" for the root)
    role: str
    services: tuple[Service, ...]
    devices: tuple[Device, ...] = ()

    def all_services(self) -> Iterator[Service]:
        yield from self.services
        for child in self.devices:
            yield from child.all_services()


def _tr64(name: str, control: str, scpd: str, service_id: str | None = None) -> Service:
    return Service(f"urn:dslforum-org:service:{name}:1",
                   f"urn:{service_id or name}-com:serviceId:{name}1", control, scpd)


DEVICEINFO = _tr64("DeviceInfo", "/upnp/control/deviceinfo", "/deviceinfoSCPD.xml")
VOIP = _tr64("X_VoIP", "/upnp/control/x_voip", "/x_voipSCPD.xml")
WAN_COMMON = _tr64("WANCommonInterfaceConfig", "/upnp/control/wancommonifconfig1",
                   "/wancommonifconfigSCPD.xml", service_id="WANCIfConfig")
IGD_COMMON = Service("urn:schemas-upnp-org:service:WANCommonInterfaceConfig:1",
                     "urn:upnp-org:serviceId:WANCommonIFC1", "/igdupnp/control/WANCommonIFC1",
                     "/igdicfgSCPD.xml", auth=False)
IGD_IP = Service("urn:schemas-upnp-org:service:WANIPConnection:1",
                 "urn:upnp-org:serviceId:WANIPConn1", "/igdupnp/control/WANIPConn1",
                 "/igdconnSCPD.xml", auth=False)

TR64_ROOT = Device(
    "urn:dslforum-org:device:InternetGatewayDevice:1", "", (DEVICEINFO, VOIP),
    (
        Device("urn:dslforum-org:device:LANDevice:1", "LANDevice", ()),
        Device("urn:dslforum-org:device:WANDevice:1", "WANDevice", (WAN_COMMON,), (
            Device("urn:dslforum-org:device:WANConnectionDevice:1", "WANConnectionDevice",
                   ()),
        )),
    ),
)
IGD_ROOT = Device(
    "urn:schemas-upnp-org:device:InternetGatewayDevice:1", "", (),
    (
        Device("urn:schemas-upnp-org:device:WANDevice:1", "WANDevice", (IGD_COMMON,), (
            Device("urn:schemas-upnp-org:device:WANConnectionDevice:1", "WANConnectionDevice",
                   (IGD_IP,)),
        )),
    ),
)
SERVICES: tuple[Service, ...] = (*TR64_ROOT.all_services(), *IGD_ROOT.all_services())


def _service_xml(s: Service) -> str:
    return (f"<service>\n<serviceType>{s.service_type}</serviceType>\n"
            f"<serviceId>{s.service_id}</serviceId>\n<controlURL>{s.control}</controlURL>\n"
            f"<eventSubURL>{s.control}</eventSubURL>\n<SCPDURL>{s.scpd}</SCPDURL>\n</service>\n")


def _device_xml(d: Device, udn: str, tr64: bool) -> str:
    name = f"{d.role} - {MODEL}" if d.role else MODEL
    friendly = name if d.role else f"{MODEL} (simulated)"
    out = (f"<device>\n<deviceType>{d.device_type}</deviceType>\n"
           f"<friendlyName>{escape(friendly)}</friendlyName>\n<manufacturer>AVM</manufacturer>\n"
           "<manufacturerURL>www.avm.de</manufacturerURL>\n"
           f"<modelDescription>{escape(name)}</modelDescription>\n"
           f"<modelName>{escape(name)}</modelName>\n<modelNumber>avm</modelNumber>\n"
           f"<modelURL>www.avm.de</modelURL>\n<UDN>{udn}</UDN>\n")
    if d.role and tr64:
        out += "<UPC>AVM TR-064</UPC>\n"
    if not d.role:
        out += "<serialNumber>3C:37:86:00:00:00</serialNumber>\n"
    if d.services:
        out += "<serviceList>\n" + "".join(_service_xml(s) for s in d.services)
        out += "</serviceList>\n"
    if d.devices:
        out += "<deviceList>\n" + "".join(_device_xml(c, udn, tr64) for c in d.devices)
        out += "</deviceList>\n"
    if not d.role:
        out += "<presentationURL>http://fritz.box</presentationURL>\n"
    return out + "</device>\n"


def tr64_description(firmware: str) -> str:
    """``/tr64desc.xml``: the systemVersion (``154.07.57``: the box's major, minor and
    patch) before the device tree."""
    major, minor, patch = firmware.split(".")
    return (
        f'<?xml version="1.0"?>\n<root xmlns="{TR64_DEVICE_NS}">\n'
        "<specVersion>\n<major>1</major>\n<minor>0</minor>\n</specVersion>\n"
        f"<systemVersion>\n<HW>226</HW>\n<Major>{int(major)}</Major>\n"
        f"<Minor>{int(minor)}</Minor>\n<Patch>{int(patch)}</Patch>\n"
        f"<Buildnumber>100000</Buildnumber>\n<Display>{firmware}</Display>\n</systemVersion>\n"
        + _device_xml(TR64_ROOT, UDN, tr64=True) + "</root>\n"
    )


def igd_description() -> str:
    """``/igddesc.xml``: the UPnP Internet Gateway Device."""
    return (
        f'<?xml version="1.0"?>\n<root xmlns="{IGD_DEVICE_NS}">\n'
        "<specVersion>\n<major>1</major>\n<minor>0</minor>\n</specVersion>\n"
        + _device_xml(IGD_ROOT, IGD_UDN, tr64=False) + "</root>\n"
    )


#: (inputs, outputs) of an action, by its argument names
Signature = tuple[tuple[str, ...], tuple[str, ...]]


def scpd(namespace: str, actions: Mapping[str, Signature], types: Mapping[str, str],
         allowed: Mapping[str, tuple[str, ...]]) -> str:
    """An SCPD: each argument ``NewX`` is typed by the state variable ``X`` (``types``: the
    arguments that are no strings; ``allowed``: a state variable's allowed values)."""
    parts, variables = [], {}
    for name, (inputs, outputs) in actions.items():
        args = [(a, "in") for a in inputs] + [(a, "out") for a in outputs]
        variables.update({a[3:]: types.get(a, "string") for a, _ in args})
        parts.append(
            f"<action>\n<name>{name}</name>\n<argumentList>\n"
            + "".join(f"<argument>\n<name>{a}</name>\n<direction>{d}</direction>\n"
                      f"<relatedStateVariable>{a[3:]}</relatedStateVariable>\n</argument>\n"
                      for a, d in args)
            + "</argumentList>\n</action>\n")
    states = "".join(
        f'<stateVariable sendEvents="no">\n<name>{var}</name>\n<dataType>{kind}</dataType>\n'
        + ("<allowedValueList>\n" + "".join(f"<allowedValue>{v}</allowedValue>\n"
                                            for v in allowed[var]) + "</allowedValueList>\n"
           if var in allowed else "")
        + "</stateVariable>\n"
        for var, kind in variables.items())
    return (f'<?xml version="1.0"?>\n<scpd xmlns="{namespace}">\n'
            "<specVersion>\n<major>1</major>\n<minor>0</minor>\n</specVersion>\n"
            f"<actionList>\n{''.join(parts)}</actionList>\n"
            f"<serviceStateTable>\n{states}</serviceStateTable>\n</scpd>\n")
