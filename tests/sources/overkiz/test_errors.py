"""Every real Overkiz error body maps to the right typed error."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector.errors import CollectorError, TransientError
from collector.sources.overkiz.errors import (
    OverkizAccessDenied,
    OverkizBadCredentials,
    OverkizBadRequest,
    OverkizBanned,
    OverkizListenerLost,
    OverkizNotAuthenticated,
    OverkizNotFound,
    OverkizNotOffered,
    OverkizRateLimited,
    OverkizUnavailable,
    error_for,
)

#: (file under overkiz/errors, HTTP status the service answers it with, expected type)
EXPECTED: dict[str, tuple[int, type[CollectorError]]] = {
    "cloud/401-not-authenticated.json": (401, OverkizNotAuthenticated),
    "cloud/502-bad-gateway.html": (502, OverkizUnavailable),
    "cloud/503-empty.html": (503, OverkizUnavailable),
    "cloud/503-maintenance.html": (503, OverkizUnavailable),
    "cloud/access-denied-to-gateway.json": (403, OverkizAccessDenied),
    "cloud/action-group-setup-not-found.json": (400, OverkizNotFound),
    "cloud/application-not-allowed.json": (403, OverkizAccessDenied),
    "cloud/bad-credentials.json": (401, OverkizBadCredentials),
    "cloud/exec-queue-full.json": (400, OverkizRateLimited),
    "cloud/invalid-event-listener-id.json": (400, OverkizListenerLost),
    "cloud/invalid-token.json": (400, OverkizBadCredentials),
    "cloud/missing-api-key.json": (401, OverkizBadCredentials),
    "cloud/missing-authorization-token.json": (401, OverkizNotAuthenticated),
    "cloud/no-overkiz-user.json": (401, OverkizBadCredentials),
    "cloud/no-registered-event-listener.json": (400, OverkizListenerLost),
    "cloud/no-such-action-group.json": (400, OverkizNotFound),
    "cloud/no-such-command.json": (400, OverkizNotFound),
    "cloud/no-such-controllable.json": (400, OverkizNotFound),
    "cloud/no-such-resource.json": (404, OverkizNotOffered),
    "cloud/no-such-ui-profile.json": (400, OverkizNotFound),
    "cloud/not-such-token.json": (400, OverkizBadCredentials),
    "cloud/resource-access-denied-device-setup-mismatch.json": (403, OverkizAccessDenied),
    "cloud/resource-access-denied-gateway-not-in-setup.json": (403, OverkizAccessDenied),
    "cloud/session-and-bearer.json": (400, OverkizBadRequest),
    "cloud/too-many-attempts-banned.json": (401, OverkizBanned),
    "cloud/too-many-concurrent-requests.json": (400, OverkizRateLimited),
    "cloud/too-many-executions.json": (400, OverkizRateLimited),
    "cloud/too-many-requests.json": (401, OverkizRateLimited),
    "cloud/unknown-auth-error.json": (401, OverkizBadCredentials),
    "cloud/unknown-resource-access-denied.json": (403, OverkizAccessDenied),
    "cloud/unknown-user-account.json": (401, OverkizBadCredentials),
    "local/204-no-corresponding-execId.json": (204, OverkizNotFound),
    "local/400-action-group-setup-not-found.json": (400, OverkizNotFound),
    "local/400-bad-parameters.json": (400, OverkizBadRequest),
    "local/400-bus-error.json": (400, OverkizUnavailable),
    "local/400-duplicate-action-on-device.json": (400, OverkizBadRequest),
    "local/400-malformed-action-group.json": (400, OverkizBadRequest),
    "local/400-malformed-fetch-id.json": (400, OverkizBadRequest),
    "local/400-missing-execution-id.json": (400, OverkizBadRequest),
    "local/400-missing-parameters.json": (400, OverkizBadRequest),
    "local/400-no-registered-event-listener.json": (400, OverkizListenerLost),
    "local/400-no-such-device.json": (400, OverkizNotFound),
    "local/400-unknown-object.json": (400, OverkizNotFound),
    "local/400-unspecified-error.json": (400, OverkizBadRequest),
    "local/401-missing-authorization-token.json": (401, OverkizNotAuthenticated),
    "local/401-not-authenticated.json": (401, OverkizNotAuthenticated),
}


def test_every_real_error_body_is_in_the_table(shared_dir: Path) -> None:
    root = shared_dir / "fixtures" / "overkiz" / "errors"
    found = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    assert found == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_real_error_body_maps_to_typed_error(shared_dir: Path, name: str) -> None:
    status, kind = EXPECTED[name]
    body = (shared_dir / "fixtures" / "overkiz" / "errors" / name).read_bytes()
    error = error_for(status, body, retry_after=7.0)
    assert type(error) is kind
    assert f"HTTP {status}" in str(error)
    if isinstance(error, TransientError):
        assert error.retry_after == 7.0


def test_token_echoed_by_server_is_not_in_the_message() -> None:
    body = b'{"errorCode":"UNSPECIFIED_ERROR","error":"Invalid token : 0f1e2d3c-secret"}'
    error = error_for(400, body)
    assert isinstance(error, OverkizBadCredentials)
    assert "0f1e2d3c-secret" not in str(error)
    assert "Invalid token : ***" in str(error)


def test_429_without_body_is_rate_limited() -> None:
    error = error_for(429, b"", retry_after=30.0)
    assert isinstance(error, OverkizRateLimited)
    assert error.retry_after == 30.0


@given(st.integers(min_value=100, max_value=599), st.binary(max_size=300))
def test_any_answer_gives_a_typed_error(status: int, body: bytes) -> None:
    assert isinstance(error_for(status, body), CollectorError)


@given(
    st.integers(min_value=400, max_value=599),
    st.one_of(st.none(), st.text(max_size=40), st.integers()),
    st.one_of(st.none(), st.text(max_size=80), st.lists(st.integers(), max_size=3)),
)
def test_any_json_error_gives_a_typed_error(status: int, code: object, text: object) -> None:
    import json

    body = json.dumps({"errorCode": code, "error": text}).encode()
    assert isinstance(error_for(status, body), CollectorError)
