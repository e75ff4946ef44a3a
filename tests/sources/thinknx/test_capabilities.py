"""Objects without some capabilities, real failures beside them, and a server that hangs.

"Not all capabilities are available to all the devices" (Integration Kit, "Devices
capabilities"): a thermostat without a sensor of its own, a shutter without slats, an HVAC
unit without a fan object still give everything else, every poll.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import httpx
import pytest

from collector.errors import PartialFailure, TransientError
from collector.model import Reading
from collector.sources.thinknx.source import ThinknxSource
from tests.sources.thinknx.fake import (
    IMPOSSIBLE,
    NOT_FOUND,
    PARAMS_ERRORS,
    FakeServer,
    Hanging,
    asked,
)
from tests.sources.thinknx.test_client import EXPECTED, Clock, config, source, values

Result = Sequence[Reading] | Exception


def polls(src: ThinknxSource, clock: Clock, advances: Sequence[float],
          between: Any = None) -> list[Result]:
    """One poll after each advance of the clock (seconds)."""

    async def go() -> list[Result]:
        out: list[Result] = []
        try:
            for step, advance in enumerate(advances):
                clock.now += advance
                if between is not None:
                    between(step)
                try:
                    out.append(await src.poll())
                except Exception as err:  # the test looks at it
                    out.append(err)
        finally:
            await src.aclose()
            await src._http.aclose()
        return out

    return asyncio.run(go())


def without(*keys: tuple[str, str, str | None, str | None]) -> dict[Any, Any]:
    return {k: v for k, v in EXPECTED.items() if k not in keys}


TEMPERATURE = ("T1", "temperature_c", None, None)
SETPOINT = ("T1", "setpoint_c", "target", None)
CHRONO = ("T1", "state", None, "chrono")
SLATS = ("B1", "level_pct", "slats", None)
FAN = ("H1", "state", None, "fan_speed")


def test_a_thermostat_without_a_sensor_gives_the_rest_on_every_poll(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="collector.sources.thinknx")
    server = FakeServer("basic", capability_errors={("T1", "actualtemp"): IMPOSSIBLE})
    clock = Clock()
    src = source(server, config("basic"), clock)

    def sensor_fitted(step: int) -> None:
        if step == 5:
            server.capability_errors.clear()

    # four polls within the hour, one an hour later (asked again: still none), then the
    # sensor is there and is found at the next hourly question
    got = polls(src, clock, [0, 60, 60, 60, 3600, 3600], sensor_fitted)
    for result in got[:5]:
        assert not isinstance(result, Exception), result
        assert values(result) == without(TEMPERATURE)
    assert values(got[5]) == EXPECTED  # type: ignore[arg-type]
    assert src.problems == {}
    assert src.missing == frozenset()
    # asked at the first poll, at the hourly question and when it was back
    assert asked(server, "actualtemp", "T1") == 3
    assert asked(server, "setpointstatus", "T1") == 6
    lines = [r.getMessage() for r in caplog.records if "actualtemp" in r.getMessage()]
    assert lines == [
        "thinknx:villa: thermostat 'Living' (guid T1), actualtemp answers 'impossible to "
        "execute': taken as a capability the object does not have, asked again every 60 min",
        "thinknx:villa: thermostat 'Living' (guid T1), actualtemp answers again",
    ]


@pytest.mark.parametrize(("errors", "gone", "missing"), [
    ({("B1", "blindanglestatus"): IMPOSSIBLE}, SLATS, ("B1", "blindanglestatus")),
    ({("B1", "blindanglestatus"): NOT_FOUND}, SLATS, ("B1", "blindanglestatus")),
    ({("H1", "hvacfanset"): IMPOSSIBLE}, FAN, ("H1", "hvacfanset")),
    # the fan speed under the document's other name is refused as well
    ({("H1", "hvacfanset"): PARAMS_ERRORS, ("H1", "hvacfanstatus"): PARAMS_ERRORS}, FAN,
     ("H1", "hvacfanset")),
    ({("T1", "chronoenstatus"): NOT_FOUND}, CHRONO, ("T1", "chronoenstatus")),
])
def test_a_missing_capability_is_no_failure_and_not_asked_again_within_the_hour(
        errors: dict[tuple[str, str], tuple[int, bytes]],
        gone: tuple[str, str, None, str | None], missing: tuple[str, str]) -> None:
    server = FakeServer("digest", capability_errors=errors)
    clock = Clock()
    src = source(server, config("digest"), clock)
    got = polls(src, clock, [0, 60, 60])
    for result in got:
        assert not isinstance(result, Exception), result
        assert values(result) == without(gone)
    guid, controller = missing
    assert asked(server, controller, guid) == 1
    assert src.missing == {missing}
    assert src.problems == {}


def test_the_fan_speed_under_its_other_name_is_no_missing_capability() -> None:
    server = FakeServer("basic", capability_errors={("H1", "hvacfanset"): PARAMS_ERRORS})
    clock = Clock()
    got = polls(source(server, config("basic"), clock), clock, [0, 60])
    assert [values(r) for r in got] == [EXPECTED, EXPECTED]  # type: ignore[arg-type]
    # "hvacfanset" once; then straight to "hvacfanstatus", the name of the document's example
    assert (asked(server, "hvacfanset", "H1"), asked(server, "hvacfanstatus", "H1")) == (1, 2)


@pytest.mark.parametrize(("status", "body", "text"), [
    (500, b"oops", "HTTP 500"),
    (503, b"", "HTTP 503"),
    (200, b"<html>busy</html>", "not JSON"),
    (200, b'{"error": "impossible to execute"}', "impossible to execute"),
])
def test_a_real_failure_of_one_capability_costs_only_its_reading(
        status: int, body: bytes, text: str) -> None:
    server = FakeServer("basic", capability_errors={("T1", "setpointstatus"): (status, body)})
    clock = Clock()
    src = source(server, config("basic"), clock)
    got = polls(src, clock, [0, 60])
    for result in got:
        assert isinstance(result, PartialFailure), result
        [message] = result.errors
        assert message.startswith("object:T1: ")
        assert "thermostat 'Living' (guid T1), setpointstatus" in message and text in message
        assert values(result.readings) == without(SETPOINT)  # type: ignore[arg-type]
    assert "object:T1" in src.problems
    assert src.missing == frozenset()
    assert asked(server, "setpointstatus", "T1") == 2  # a failure is asked again next poll


def test_an_object_none_of_whose_capabilities_answers_is_a_failing_object() -> None:
    # a refusal beside real failures, and refusals of every capability (a wrong guid)
    thermostat = {("T1", "actualtemp"): IMPOSSIBLE, ("T1", "setpointstatus"): (500, b""),
                  ("T1", "tempmodestatus"): (500, b""), ("T1", "chronoenstatus"): (500, b"")}
    for errors, objects in ((thermostat, {}), ({}, {"T1": NOT_FOUND})):
        server = FakeServer("basic", capability_errors=errors, errors=objects)
        clock = Clock()
        src = source(server, config("basic"), clock)
        got = polls(src, clock, [0, 60])
        for result in got:
            assert isinstance(result, PartialFailure), result
            [message] = result.errors
            assert message.startswith("object:T1: ")
            assert "thermostat 'Living' (guid T1), actualtemp" in message
            assert values(result.readings) == {
                k: v for k, v in EXPECTED.items() if k[0] != "T1"}  # type: ignore[arg-type]
        assert src.missing == frozenset()
        assert asked(server, "actualtemp", "T1") == 2


# ---- a server that hangs: one timeout per poll -----------------------------------------------


async def settle(hang: Hanging, task: asyncio.Task[Any]) -> None:
    """Run the event loop until the poll is done or every request it sends is waiting."""
    quiet = 0
    while quiet < 50 and not task.done():
        before = len(hang.sent)
        await asyncio.sleep(0)
        quiet = quiet + 1 if len(hang.sent) == before else 0


def timeouts(src: ThinknxSource, hang: Hanging, polls: int
             ) -> list[tuple[list[list[str]], Result]]:
    """Per poll: the requests waiting at each timeout that struck, and its result."""

    async def go() -> list[tuple[list[list[str]], Result]]:
        out: list[tuple[list[list[str]], Result]] = []
        try:
            for _ in range(polls):
                task = asyncio.create_task(src.poll())
                rounds: list[list[str]] = []
                while True:
                    start = len(hang.sent)
                    await settle(hang, task)
                    if task.done():
                        break
                    rounds.append(hang.sent[start:])
                    hang.strike()
                try:
                    out.append((rounds, task.result()))
                except Exception as err:  # the test looks at it
                    out.append((rounds, err))
        finally:
            await src.aclose()
            await src._http.aclose()
        return out

    return asyncio.run(go())


THERMOSTATS = [{"guid": f"T{i}", "kind": "thermostat", "name": f"t{i}"} for i in range(12)]


def hanging_source(mode: str, hang: Hanging, server: FakeServer | None = None,
                   hangs: Any = lambda path: True) -> ThinknxSource:
    """A source whose requests hang where ``hangs(path)``; the others go to ``server``."""
    answering = server or FakeServer(mode)

    async def handle(request: httpx.Request) -> httpx.Response:
        if hangs(request.url.path):
            return await hang.handle(request)
        return await answering.handle(request)

    http = httpx.AsyncClient(transport=httpx.MockTransport(handle), timeout=5)
    return ThinknxSource(config(mode, objects=THERMOSTATS), http)


@pytest.mark.parametrize("mode", ["basic", "digest", "cloud"])
def test_a_hanging_server_costs_one_timeout_per_poll(mode: str) -> None:
    hang = Hanging()
    src = hanging_source(mode, hang)
    for rounds, result in timeouts(src, hang, polls=2):
        # the server status went unanswered: the 48 object requests were not sent
        assert rounds == [["system/serverStatus"]]
        assert isinstance(result, TransientError)
        assert "server status" in str(result) and "no answer within the timeout" in str(result)
    assert len(src.problems) == 1 + 12
    assert all(isinstance(e, TransientError) for e in src.problems.values())
    assert "not asked" in str(src.problems["object:T11"])


def test_a_server_that_hangs_after_its_status_costs_one_timeout() -> None:
    hang = Hanging()
    src = hanging_source("digest", hang, hangs=lambda path: "serverStatus" not in path)
    [(rounds, result)] = timeouts(src, hang, polls=1)
    # the first eight object requests (max_concurrency) wait together; once they went
    # unanswered, the 40 not sent yet were not sent
    assert len(rounds) == 1 and len(rounds[0]) == 8
    assert {"actualtemp", "setpointstatus", "tempmodestatus", "chronoenstatus"} == \
        set(rounds[0])
    assert isinstance(result, PartialFailure)  # the server's readings are kept
    assert {r.measurement for r in result.readings} >= {"uptime_s", "clients"}  # type: ignore[attr-defined]
    assert len(result.errors) == 12
