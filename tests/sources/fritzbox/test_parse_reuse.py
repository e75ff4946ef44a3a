"""Successive polls: only the devices that changed are parsed, the others are given again.

Every list here is checked against reading it afresh (a site never polled before): the
same devices, readings (values, tags, times, order) and problems, whatever was reused.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest

from collector.bench import successive_devicelists
from collector.errors import ParseError
from collector.model import Again, ReadingBatch
from collector.sources.fritzbox.parse import DeviceList, parse_devicelist
from tests.sources.fritzbox import fixture

T = datetime(2024, 1, 7, 12, 0, tzinfo=UTC)
_SITES = itertools.count()


def _fresh(xml: bytes, time: datetime) -> DeviceList:
    return parse_devicelist(xml, site=f"afresh-{next(_SITES)}", time=time)


def _same(a: DeviceList, b: DeviceList) -> None:
    assert a.devices == b.devices
    assert [r._replace(site="") for r in a.readings] == [r._replace(site="") for r in b.readings]
    assert [(str(p), p.part) for p in a.problems] == [(str(p), p.part) for p in b.problems]


def _agains(dl: DeviceList) -> list[Again]:
    assert isinstance(dl.readings, ReadingBatch)
    return [p for p in dl.readings.parts if isinstance(p, Again)]


@pytest.fixture(scope="module")
def house_answers() -> list[bytes]:
    """Twelve successive answers of the simulated 60-device house, a minute apart."""
    return successive_devicelists(60, 12)


def test_successive_polls_give_what_reading_afresh_gives(house_answers: list[bytes]) -> None:
    reused = 0
    for minute, xml in enumerate(house_answers):
        at = T + timedelta(minutes=minute)
        dl = parse_devicelist(xml, site="house", time=at)
        _same(dl, _fresh(xml, at))
        assert {r.time for r in dl.readings if r.label != "pressed"} == {at}
        if minute == 0:
            assert _agains(dl) == []  # nothing known of the site yet
        reused += len(_agains(dl))
    # between two polls a minute apart most devices say the same
    assert reused > 11 * 60 // 3


def test_a_changed_device_that_is_not_well_formed_fails_the_list_as_afresh() -> None:
    xml = fixture("devicelist", "spec_example")
    parse_devicelist(xml, site="broken", time=T)
    broken = xml.replace(b"<energy>", b"<energy><oops>", 1)
    assert broken != xml
    with pytest.raises(ParseError) as reused:
        parse_devicelist(broken, site="broken", time=T + timedelta(minutes=1))
    with pytest.raises(ParseError) as afresh:
        _fresh(broken, T)
    assert (str(reused.value), reused.value.part) == (str(afresh.value), afresh.value.part)
    # the failed list changed nothing: the next good one is still given again
    again = parse_devicelist(xml, site="broken", time=T + timedelta(minutes=2))
    _same(again, _fresh(xml, T + timedelta(minutes=2)))
    assert len(_agains(again)) == 3


def test_a_device_element_inside_a_changed_device_reads_the_whole_list() -> None:
    xml = fixture("devicelist", "spec_example")
    parse_devicelist(xml, site="nested", time=T)
    nested = xml.replace(b"<energy>", b'<device identifier="1"/><energy>', 1)
    later = T + timedelta(minutes=1)
    dl = parse_devicelist(nested, site="nested", time=later)
    _same(dl, _fresh(nested, later))
    assert _agains(dl) == []


@pytest.mark.parametrize(("where", "what"), [
    (b"</devicelist>", b"<!-- <device> --></devicelist>"),  # after the last device
    (b"<energy>", b'<!-- <device identifier="x"> --><energy>'),  # inside a device
    (b"<energy>", b"<energy><![CDATA[<group>]]>"),
    (b"<device ", b"<?pi <device?><device "),  # between two devices
    (b"<devicelist", b"<!-- <device> --><devicelist"),  # in the document's start
    (b"</devicelist>", b"</devicelist><!-- <device> -->"),  # after the root
])
def test_a_comment_cdata_pi_or_doctype_anywhere_reads_the_whole_list(
        where: bytes, what: bytes) -> None:  # fmt: skip
    xml = fixture("devicelist", "spec_example")
    site = f"comment-{what!r}"
    parse_devicelist(xml, site=site, time=T)
    commented = xml.replace(where, what, 1)
    assert commented != xml
    dl = parse_devicelist(commented, site=site, time=T + timedelta(minutes=1))
    _same(dl, _fresh(commented, T + timedelta(minutes=1)))
    assert _agains(dl) == []


def test_a_group_given_again_resolves_members_that_changed() -> None:
    xml = fixture("devicelist", "group_powermeter")
    first = parse_devicelist(xml, site="group", time=T)
    groups = [d for d in first.devices if d.is_group]
    assert groups and all(g.members for g in groups)
    member = groups[0].members[0]
    # change the member's power only: the group's own bytes stay the same
    power = next(r for r in _fresh(xml, T).readings
                 if r.device_id == member and r.measurement == "power_w")  # fmt: skip
    raw = f"<power>{round(power.value * 1000)}</power>".encode()
    changed = xml.replace(raw, b"<power>4321</power>", 1)
    assert changed != xml
    later = T + timedelta(minutes=1)
    dl = parse_devicelist(changed, site="group", time=later)
    _same(dl, _fresh(changed, later))
    assert [d.members for d in dl.devices if d.is_group] == [g.members for g in groups]
    assert [r.value for r in dl.readings
            if r.device_id == member and r.measurement == "power_w"] == [4.321]  # fmt: skip


def test_the_last_device_is_given_again_too() -> None:
    """The root's end tag is not part of the last device."""
    xml = fixture("devicelist", "spec_example")
    parse_devicelist(xml, site="last", time=T)
    first_power = b"<power>0</power>"
    assert first_power in xml
    changed = xml.replace(first_power, b"<power>1000</power>", 1)
    dl = parse_devicelist(changed, site="last", time=T + timedelta(minutes=1))
    _same(dl, _fresh(changed, T + timedelta(minutes=1)))
    # the plug's meter alone changed: given again too, its meter's readings made anew
    assert [(a.template[0][0].device_id, a.fresh) for a in _agains(dl)] == [
        ("087610000434", (5, 6, 7)), ("087611048079", ()), ("65:3A:18-900", ())]


def _plug_power(xml: bytes) -> bytes:
    power = next(r for r in _fresh(xml, T).readings if r.measurement == "power_w")
    return f"<power>{round(power.value * 1000)}</power>".encode()


def test_a_device_whose_meter_alone_changed_is_not_parsed_again() -> None:
    from collector.sources.fritzbox import parse_replay

    xml = fixture("devicelist", "spec_example")
    parse_devicelist(xml, site="meter", time=T)
    changed = xml.replace(_plug_power(xml), b"<power>4321</power>", 1).replace(
        b"<energy>707</energy>", b"<energy>708</energy>", 1)
    assert changed.count(b"4321") == 1 and changed.count(b"708<") == 1
    _, cut = parse_replay.load("meter", changed)
    assert cut is not None and list(cut.remetered) == [0]  # the plug, without lxml
    later = T + timedelta(minutes=1)
    dl = parse_devicelist(changed, site="meter", time=later)
    _same(dl, _fresh(changed, later))
    plug = [(r.measurement, r.value, r.time) for r in dl.readings
            if r.device_id == "087610000434" and r.measurement.endswith(("_w", "_wh", "_v"))]
    assert plug == [("power_w", 4.321, later), ("energy_wh", 708.0, later),
                    ("voltage_v", 230.252, later)]  # fmt: skip
    # and again a minute on: the entry made from the new values is the one reused
    again = changed.replace(b"<power>4321</power>", b"<power>5000</power>", 1)
    dl = parse_devicelist(again, site="meter", time=later + timedelta(minutes=1))
    _same(dl, _fresh(again, later + timedelta(minutes=1)))


@pytest.mark.parametrize(("text", "watts"), [(b"", []), (b"inval", []), (b" 12", [0.012]),
                                             (b"-5", [-0.005])])  # fmt: skip
def test_a_meter_value_that_is_not_plain_digits_reads_the_device_anew(
        text: bytes, watts: list[float]) -> None:  # fmt: skip
    from collector.sources.fritzbox import parse_replay

    site = f"meter-{text!r}"
    xml = fixture("devicelist", "spec_example")
    parse_devicelist(xml, site=site, time=T)
    changed = xml.replace(_plug_power(xml), b"<power>" + text + b"</power>", 1)
    _, cut = parse_replay.load(site, changed)
    assert cut is not None and cut.remetered == {}
    later = T + timedelta(minutes=1)
    dl = parse_devicelist(changed, site=site, time=later)
    _same(dl, _fresh(changed, later))
    assert [r.value for r in dl.readings
            if r.device_id == "087610000434" and r.measurement == "power_w"] == watts  # fmt: skip


def test_the_lines_of_successive_polls_are_those_of_reading_afresh(
        house_answers: list[bytes]) -> None:  # fmt: skip
    """What the app's chunk encoder writes of reused devices (kept text, meters made anew)
    is, poll after poll, the text of the readings read afresh."""
    from collector.chunk import Chunk
    from collector.lineprotocol import Encoder

    encoder = Encoder()
    fresh_meters = 0
    for minute, xml in enumerate(house_answers):
        at = T + timedelta(minutes=minute)
        dl = parse_devicelist(xml, site="lines", time=at)
        fresh_meters += sum(len(a.fresh) for a in _agains(dl))
        chunk = Chunk(encoder)
        chunk.add(dl.readings)
        afresh = [r._replace(site="lines") for r in _fresh(xml, at).readings]
        assert chunk.text().split("\n") == Encoder().encode_many(afresh)
    assert fresh_meters > 11 * 10  # meters changed between polls and were written anew


@pytest.mark.parametrize("end", [b"</devicelist>\n", b"</devicelist >\r\n ", b"</devicelist>x",
                                 b"</devicelist><devicelist/>", b"</devicelist"])
def test_a_list_where_nothing_changed_still_ends_as_a_document_must(end: bytes) -> None:
    xml = fixture("devicelist", "spec_example")
    site = f"end-{end!r}"
    parse_devicelist(xml, site=site, time=T)
    ended = xml[: xml.rindex(b"</devicelist")] + end
    later = T + timedelta(minutes=1)
    try:
        afresh = _fresh(ended, later)
    except ParseError as err:
        with pytest.raises(ParseError) as reused:
            parse_devicelist(ended, site=site, time=later)
        assert str(reused.value) == str(err)
    else:
        dl = parse_devicelist(ended, site=site, time=later)
        _same(dl, afresh)
        assert len(_agains(dl)) == 3  # nothing parsed again


def test_a_group_given_again_loses_a_member_that_left_the_list() -> None:
    xml = fixture("devicelist", "group_powermeter")
    first = parse_devicelist(xml, site="leaving", time=T)
    group = next(d for d in first.devices if d.is_group)
    member = group.members[0]
    start = xml.index(b"<device ")
    while member.encode() not in xml[start: xml.index(b"</device>", start)].replace(b" ", b""):
        start = xml.index(b"<device ", start + 1)
    without = xml[:start] + xml[xml.index(b"</device>", start) + len(b"</device>"):]
    for minute in (1, 2):  # and again with nothing changed
        later = T + timedelta(minutes=minute)
        dl = parse_devicelist(without, site="leaving", time=later)
        _same(dl, _fresh(without, later))
        assert next(d for d in dl.devices if d.is_group).members == group.members[1:]
