"""TR-064 client for the X_VoIP service: SOAP over HTTP(S) with digest authentication.

The control URL comes from the box's own ``tr64desc.xml`` and the offered actions from the
service's SCPD, both read once per client. Actions a firmware lacks (absent from the SCPD,
or answered with UPnPError 401 "Invalid Action") are skipped with one warning each.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import httpx

from collector.aio import AsyncClosing
from collector.config import FritzboxConfig
from collector.errors import (
    AuthError,
    CollectorError,
    ConfigError,
    ParseError,
    PermanentError,
    TransientError,
)
from collector.sources.fritzbox.client import (
    AuthBackoff,
    Clock,
    HttpAnswer,
    build_http_client,
    fetch_capped,
)
from collector.sources.fritzbox.parse_tr064 import (
    X_VOIP_SERVICE,
    DeviceDescription,
    Service,
    VoipAccount,
    build_soap_request,
    parse_count,
    parse_description,
    parse_scpd_actions,
    parse_soap_fault,
    parse_soap_response,
    parse_voip_account_list,
    parse_voip_numbers,
    parse_voip_status,
)

log = logging.getLogger(__name__)

DESC_PATH = "/tr64desc.xml"
TR064_HTTP_PORT = 49000
TR064_HTTPS_PORT = 49443

GET_VOIP_ACCOUNTS = "X_AVM-DE_GetVoIPAccounts"
GET_VOIP_STATUS = "X_AVM-DE_GetVoIPStatus"
GET_NUMBERS = "X_AVM-DE_GetNumbers"
GET_NUMBER_OF_CLIENTS = "X_AVM-DE_GetNumberOfClients"


class MissingActionError(PermanentError):
    """The firmware does not offer this action."""

    def __init__(self, action: str) -> None:
        super().__init__(f"TR-064 action {action} is not offered by this firmware")
        self.action = action


#: UPnPError codes (TR-064, X_VoIP spec return-code tables) -> what the caller does.
_FAULTS: dict[int, tuple[type[CollectorError], str]] = {
    402: (PermanentError, "invalid arguments"),
    501: (TransientError, "action failed"),
    606: (AuthError, "action not authorised: the user needs the Phone (Telefonie) right"),
    713: (PermanentError, "no such entry (index out of range)"),
    714: (PermanentError, "no such entry"),
    820: (TransientError, "internal error of the box"),
}


@dataclass(frozen=True, slots=True)
class VoipSnapshot:
    """The VoIP part of one poll; ``clients`` is None where the firmware cannot tell."""

    accounts: tuple[VoipAccount, ...]
    clients: int | None


def default_tr064_url(url: str) -> str:
    """The box's host on port 49000 (http) or 49443 (https)."""
    parts = urlsplit(url)
    host = parts.hostname
    if not host:
        raise ConfigError(f"fritzbox url {url!r} has no host")
    if ":" in host:
        host = f"[{host}]"
    if parts.scheme == "https":
        return f"https://{host}:{TR064_HTTPS_PORT}"
    return f"http://{host}:{TR064_HTTP_PORT}"


class Tr064Client(AsyncClosing):
    """X_VoIP over TR-064. ``http`` is used as given (not closed); else one is built."""

    def __init__(
        self,
        config: FritzboxConfig,
        http: httpx.AsyncClient | None = None,
        *,
        clock: Clock = time.monotonic,
        backoff: AuthBackoff | None = None,
    ) -> None:
        self._config = config
        self._owns_http = http is None
        self._http = http if http is not None else build_http_client(config)
        self._timeout = httpx.Timeout(config.timeout)
        self.base_url = (config.tr064_url or default_tr064_url(config.url)).rstrip("/")
        self._auth = httpx.DigestAuth(config.username, config.password.get_secret_value())
        self._backoff = backoff if backoff is not None else AuthBackoff(clock=clock)
        self._description: DeviceDescription | None = None
        self._actions: dict[str, frozenset[str] | None] = {}
        self._missing: set[str] = set()

    @property
    def name(self) -> str:
        return self._config.name

    @property
    def missing_actions(self) -> frozenset[str]:
        """Actions found missing so far (each warned about once)."""
        return frozenset(self._missing)

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    # --- discovery ----------------------------------------------------------------------------

    async def description(self) -> DeviceDescription:
        """tr64desc.xml (no authentication needed), read once."""
        if self._description is None:
            what = f"FRITZ!Box {self.name}: TR-064 {DESC_PATH}"
            answer = await self._get(self.base_url + DESC_PATH, what)
            self._description = parse_description(answer.body)
        return self._description

    async def _service(self, service_type: str) -> Service:
        service = (await self.description()).service(service_type)
        if service is None:
            raise PermanentError(f"FRITZ!Box {self.name}: TR-064 offers no {service_type} service")
        return service

    async def _offered(self, service: Service) -> frozenset[str] | None:
        """The service's actions from its SCPD; None when the SCPD cannot be read."""
        if service.service_type not in self._actions:
            offered: frozenset[str] | None = None
            if service.scpd_url:
                what = f"FRITZ!Box {self.name}: TR-064 {service.scpd_url}"
                try:
                    answer = await self._get(urljoin(self.base_url + "/", service.scpd_url), what)
                    offered = parse_scpd_actions(answer.body)
                except (PermanentError, TransientError) as err:
                    log.info("%s unreadable (%s); trying actions directly", what, err)
            self._actions[service.service_type] = offered
        return self._actions[service.service_type]

    async def has_action(self, action: str, service_type: str = X_VOIP_SERVICE) -> bool:
        if action in self._missing:
            return False
        offered = await self._offered(await self._service(service_type))
        if offered is not None and action not in offered:
            self._skip(action, "absent from the service description")
            return False
        return True

    def _skip(self, action: str, why: str) -> None:
        if action not in self._missing:
            self._missing.add(action)
            log.warning(
                "FRITZ!Box %s: TR-064 action %s is not supported by this firmware (%s); "
                "skipping it",
                self.name,
                action,
                why,
            )

    # --- calls --------------------------------------------------------------------------------

    async def call(
        self,
        action: str,
        args: Mapping[str, str] | None = None,
        *,
        service_type: str = X_VOIP_SERVICE,
    ) -> dict[str, str]:
        """One SOAP action; its out-arguments. MissingActionError when unsupported."""
        if not await self.has_action(action, service_type):
            raise MissingActionError(action)
        self._backoff.check()
        service = await self._service(service_type)
        what = f"FRITZ!Box {self.name}: TR-064 {action}"
        answer = await fetch_capped(
            self._http,
            "POST",
            urljoin(self.base_url + "/", service.control_url),
            what=what,
            timeout=self._timeout,
            content=build_soap_request(service_type, action, args or {}),
            headers={
                "Content-Type": 'text/xml; charset="utf-8"',
                "SOAPAction": f'"{service_type}#{action}"',
            },
            auth=self._auth,
        )
        if answer.status == 401:
            err = AuthError(
                f"{what}: user {self._config.username!r} was refused (wrong user name or password)"
            )
            period = self._backoff.failed(err)
            log.warning("%s; not trying again for %d s", err, period)
            raise err
        if answer.status == 200:
            self._backoff.succeeded()
            return parse_soap_response(answer.body, action)
        fault = parse_soap_fault(answer.body)
        if fault is not None:
            if fault.code == 401:  # UPnPError 401 "Invalid Action"
                self._skip(action, f"UPnPError 401 {fault.description}")
                raise MissingActionError(action)
            cls, text = _FAULTS.get(fault.code or 0, (PermanentError, fault.description))
            raise cls(f"{what}: UPnPError {fault.code}: {text}")
        if answer.status >= 500:
            raise TransientError(f"{what}: HTTP {answer.status}")
        raise PermanentError(f"{what}: unexpected HTTP {answer.status}")

    async def _get(self, url: str, what: str) -> HttpAnswer:
        answer = await fetch_capped(self._http, "GET", url, what=what, timeout=self._timeout)
        if answer.status == 200:
            return answer
        if answer.status >= 500:
            raise TransientError(f"{what}: HTTP {answer.status}")
        raise PermanentError(f"{what}: HTTP {answer.status}")

    # --- X_VoIP -------------------------------------------------------------------------------

    async def voip_accounts(self) -> tuple[VoipAccount, ...]:
        """Every VoIP account with its status where the firmware reports one."""
        accounts: tuple[VoipAccount, ...] | None = None
        try:
            out = await self.call(GET_VOIP_ACCOUNTS)
        except MissingActionError:
            pass
        else:
            accounts = parse_voip_account_list(out.get("NewX_AVM-DE_VoIPAccountList", ""))
        if accounts is None:
            # Older firmware: enumerate the VoIP numbers instead.
            try:
                out = await self.call(GET_NUMBERS)
            except MissingActionError:
                return ()
            accounts = parse_voip_numbers(out.get("NewNumberList", ""))
        if all(a.status is not None for a in accounts):
            return accounts
        return tuple([await self._with_status(a) for a in accounts])

    async def _with_status(self, account: VoipAccount) -> VoipAccount:
        if account.status is not None:
            return account
        try:
            out = await self.call(GET_VOIP_STATUS, {"NewVoIPAccountIndex": str(account.index)})
        except MissingActionError:
            return account
        status = parse_voip_status(out.get("NewX_AVM-DE_VoIPStatus", ""))
        return VoipAccount(account.index, status, account.number, account.registrar)

    async def number_of_clients(self) -> int | None:
        """X_AVM-DE_GetNumberOfClients, or None when the firmware lacks it."""
        try:
            out = await self.call(GET_NUMBER_OF_CLIENTS)
        except MissingActionError:
            return None
        key = "NewX_AVM-DE_NumberOfClients"
        if key not in out:
            raise ParseError(f"{GET_NUMBER_OF_CLIENTS} answer lacks {key}", part=key)
        return parse_count(out[key], key)

    async def voip(self) -> VoipSnapshot:
        return VoipSnapshot(await self.voip_accounts(), await self.number_of_clients())
