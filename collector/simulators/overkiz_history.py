"""The history answers of the simulated Overkiz cloud: "GET History values" and its daily and
monthly forms, "GET States History values" (every state of a device), and "POST Devices
growing index variations" (overkiz-enduser-rest-api.txt).

Guesses, where neither the spec nor a capture says:
- a history answer's ``deviceUnit`` is the device's ``core:MeasuredValueType``, whatever the
  state asked for (the name says "device"); absent where the device has none;
- with ``limit`` set and more values in the window than the limit, the OLDEST values come back,
  in time order (the spec only says "Maximum number of values to retrieve").
"""

from __future__ import annotations

import json
from typing import Any

from collector.simulators import overkiz_limits as errors
from collector.simulators._http import Request, Response
from collector.simulators.overkiz_answers import json_response
from collector.simulators.overkiz_model import HOUR_S, NUMBERS, Device, Site, State

MAX_SPAN_MS = 3 * 86400 * 1000  # "Max history query span is limited to 3 days if limit ..."


class SpanTooLong(ValueError):
    """A raw history window over the documented maximum."""


def history(
    site: Site,
    request: Request,
    url: str,
    name: str | None,
    kind: str,
    bounds: list[str],
    now: float,
) -> Response:
    """One state's history, or (``name`` None) the list of every historised state's, in the
    device's state order (the spec's "States History values" entries carry no state name)."""
    device = site.by_url.get(url)
    if device is None:
        return errors.no_such_device(url)
    try:
        start, end = int(bounds[0]), int(bounds[1])
        limit = int(request.query["limit"]) if "limit" in request.query else None
    except ValueError:
        return errors.bad_parameters("from, to and limit are epoch milliseconds")
    if start > end or (limit is not None and limit < 1):
        return errors.bad_parameters("from is after to" if start > end else "limit below 1")
    # "GET History values": "Max history query span is limited to 3 days if limit parameter
    # is not set"; with it, any span, and at most `limit` values
    if kind == "raw" and limit is None and end - start > MAX_SPAN_MS:
        raise SpanTooLong(f"{end - start} ms")
    if name is None:
        states = [s for s in device.states if s.historised]
        return json_response(
            [_history(site, device, s, kind, start, end, limit, now) for s in states]
        )
    state = device.state(name)
    return json_response(_history(site, device, state, kind, start, end, limit, now))


def _history(
    site: Site,
    device: Device,
    state: State | None,
    kind: str,
    start: int,
    end: int,
    limit: int | None,
    now: float,
) -> dict[str, Any]:
    values: list[dict[str, Any]] = []
    last = now if device.silent_since is None else min(now, device.silent_since)
    if state is not None and state.historised:
        if kind == "raw":
            values = [_point(state, [h], h) for h in site.history_hours(last, start, end)]
        else:
            periods = site.periods(last, start, end, monthly=kind == "monthly")
            values = [_period(state, a, b, last) for a, b in periods]
    body: dict[str, Any] = {
        "historyValues": values[:limit] if limit is not None else values,  # oldest first
        "historizationMethod": 2 if state is not None and state.growing else 1,
    }
    if device.unit:  # the device's unit, whatever the state (a guess: see the docstring)
        body["deviceUnit"] = device.unit
    return body


def _period(state: State, start: int, end: int, now: float) -> dict[str, Any]:
    hours = list(range(start, min(end - 1, int(now)) + 1, HOUR_S))  # [start, end)
    if state.growing:  # a growing index: what the period added
        first, last = state.value(start), state.value(min(end, now))
        assert isinstance(first, int | float) and isinstance(last, int | float)
        value = round(last - first, 3)
        return {
            "value": str(value),
            "min": first,
            "max": last,
            "samples": len(hours),
            "when": start * 1000,
        }
    return _point(state, hours, start)


def growing(site: Site, request: Request, now: float) -> Response:
    """"POST Devices growing index variations": one ``delta`` per asked slot, in order."""
    try:
        asked = json.loads(request.body or b"[]")
        out = []
        for item in asked:
            device = site.by_url.get(item["deviceUrl"])
            if device is None:
                return errors.no_such_device(str(item["deviceUrl"]))
            state = device.state(item["stateName"])
            if state is None or not state.growing:
                return errors.bad_parameters(f"{item['stateName']} is not a growing index")
            last_seen = now if device.silent_since is None else min(now, device.silent_since)
            first = state.value(min(item["from"] / 1000, last_seen))
            last = state.value(min(item["to"] / 1000, last_seen))
            assert isinstance(first, int | float) and isinstance(last, int | float)
            out.append(
                {"deviceUrl": device.url, "stateName": state.name, "delta": round(last - first, 3)}
            )
    except (ValueError, KeyError, TypeError, AttributeError):
        return errors.bad_parameters("Malformed devices growing index variation requests")
    return json_response(out)


def _point(state: State, hours: list[int], when: int) -> dict[str, Any]:
    numbers = [v for v in (state.value(h) for h in hours) if isinstance(v, int | float)]
    if not numbers or state.type not in NUMBERS:
        return {"value": None, "min": None, "max": None, "samples": 0, "when": when * 1000}
    mean = numbers[0] if len(numbers) == 1 else round(sum(numbers) / len(numbers), 3)
    return {
        "value": str(mean),
        "min": min(numbers),
        "max": max(numbers),
        "samples": len(numbers),
        "when": when * 1000,
    }
