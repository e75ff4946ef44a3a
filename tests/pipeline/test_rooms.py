"""One room model: ``[fritzbox.rooms]``, ``room_aliases`` per site, one ``room`` tag for all."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector.config import parse_config
from collector.errors import ConfigError
from collector.model import Reading, make_tags
from collector.outputs.export import rows
from collector.pipeline.app import App
from collector.pipeline.backfill import run_backfill
from collector.pipeline.rooms import RoomMap, SiteRooms, ain_key, room_map, with_room
from collector.simulators.fritzbox import FritzboxSimulator
from collector.simulators.overkiz import OverkizSimulator
from collector.simulators.thinknx import ThinknxSimulator

WHEN = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)

CONFIG = """
[[fritzbox]]
name = "home"
username = "u"
password = "p"
room_aliases = { "Wohnzimmer" = "Living room" }
  [fritzbox.rooms]
  "Wohnzimmer Thermostat" = "Wohnzimmer"
  "08761 0000434" = "Kitchen"

[[thinknx]]
name = "villa"
url = "http://127.0.0.1:5051"
username = "u"
password = "p"
  [thinknx.room_aliases]
  "Soggiorno" = "Living room"

[[overkiz]]
name = "tahoma"
url = "http://127.0.0.1:8443"
username = "u"
password = "p"
  [overkiz.room_aliases]
  "Salon" = "Living room"
"""


def _reading(source: str, site: str, device_id: str, device: str, room: str | None = None,
             **tags: str) -> Reading:
    return Reading("temperature_c", 21.5, WHEN, source, site, device_id, device,
                   make_tags(room=room, **tags))


def test_the_config_maps_fritz_devices_and_every_sites_own_names(tmp_path: Path) -> None:
    rules = room_map(parse_config(CONFIG, tmp_path / "collector.toml", env={}))
    got = rules.apply([
        _reading("fritzbox", "home", "099950421775", "Wohnzimmer Thermostat"),  # by name
        _reading("fritzbox", "home", "087610000434", "Küche", kind="target"),  # by AIN
        _reading("fritzbox", "home", "116300341877", "Waschmaschine"),  # unmapped: no room
        # a name is matched as written, never with its spaces taken out
        _reading("fritzbox", "home", "x", "WohnzimmerThermostat"),
        _reading("thinknx", "villa", "g1", "Termostato", room="Soggiorno"),
        _reading("thinknx", "villa", "g2", "Luce", room="Cucina"),  # no alias: as it is
        _reading("overkiz", "tahoma", "io://1/2", "Heater", room="Salon"),
        _reading("overkiz", "other", "io://1/3", "Heater", room="Salon"),  # another site
    ])
    assert [r.tag("room") for r in got] == [
        "Living room", "Kitchen", None, None, "Living room", "Cucina", "Living room", "Salon"]
    # the other tags stay, sorted by key as every Reading's tags are
    assert got[1].tags == (("kind", "target"), ("room", "Kitchen"))


def test_sites_without_rules_pass_their_readings_through_untouched() -> None:
    readings = [_reading("thinknx", "villa", "g1", "T", room="Soggiorno")]
    rules = RoomMap({("overkiz", "tahoma"): SiteRooms(aliases={"Salon": "Living room"})})
    assert rules.apply(readings) is readings
    assert RoomMap().apply(readings) is readings
    assert not RoomMap()


@pytest.mark.parametrize(("text", "message"), [
    ('room_aliases = { "Salon" = "Wohnzimmer", "Wohnzimmer" = "Living room" }',
     "overkiz[0].room_aliases: 'Salon' = 'Wohnzimmer', but 'Wohnzimmer' is itself an alias "
     "(of 'Living room'): give every alias its final room"),
    ('room_aliases = { "Salon" = " " }',
     "overkiz[0].room_aliases: 'Salon' = ' ': device, alias and room names may not be empty"),
    ('room_aliases = "Living room"',
     "overkiz[0].room_aliases: expected a table ([overkiz.room_aliases]), got a string"),
])
def test_a_bad_alias_table_is_one_message_naming_the_key(tmp_path: Path, text: str,
                                                         message: str) -> None:
    file = tmp_path / "collector.toml"
    section = ('[[overkiz]]\nname = "t"\nurl = "http://127.0.0.1:1"\nusername = "u"\n'
               f'password = "p"\n{text}\n')
    with pytest.raises(ConfigError) as info:
        parse_config(section, file, env={})
    assert str(info.value) == f"{file}: {message}"


def test_an_empty_fritz_room_is_refused(tmp_path: Path) -> None:
    file = tmp_path / "collector.toml"
    text = ('[[fritzbox]]\nname = "h"\nusername = "u"\npassword = "p"\n'
            '[fritzbox.rooms]\n"Bad" = ""\n')
    with pytest.raises(ConfigError) as info:
        parse_config(text, file, env={})
    assert str(info.value) == (f"{file}: fritzbox[0].rooms: 'Bad' = '': device, alias and room "
                               "names may not be empty")


def test_an_ain_matches_with_or_without_its_spaces() -> None:
    assert ain_key("08761 0000434") == ain_key("087610000434") == "087610000434"
    assert ain_key(" 11630 0341877-1 ") == "116300341877-1"


_text = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12)


@given(tags=st.dictionaries(st.sampled_from(["kind", "model", "name", "room", "scope"]),
                            _text, max_size=5),
       room=st.one_of(st.none(), _text))
def test_with_room_replaces_only_the_room_and_keeps_tags_sorted(
        tags: dict[str, str], room: str | None) -> None:
    reading = Reading("power_w", 5.0, WHEN, "fritzbox", "home", "a", "A",
                      tuple(sorted(tags.items())), None)
    got = with_room(reading, room)
    expected = {k: v for k, v in tags.items() if k != "room"} | ({"room": room} if room else {})
    assert dict(got.tags) == expected
    assert list(got.tags) == sorted(got.tags)
    assert got._replace(tags=reading.tags) == reading


@given(readings=st.lists(st.tuples(st.sampled_from(["fritzbox", "thinknx", "overkiz"]),
                                   st.sampled_from(["Salon", "Soggiorno", "Bad", None])),
                         max_size=20))
def test_apply_keeps_order_and_count_and_changes_only_rooms(
        readings: list[tuple[str, str | None]]) -> None:
    rules = RoomMap({(s, "site"): SiteRooms(aliases={"Salon": "Living room",
                                                      "Soggiorno": "Living room"})
                     for s in ("thinknx", "overkiz")})
    given_ = [_reading(s, "site", f"d{i}", f"D{i}", room) for i, (s, room) in enumerate(readings)]
    got = list(rules.apply(given_))
    assert [r.device_id for r in got] == [r.device_id for r in given_]
    for before, after in zip(given_, got, strict=True):
        room = before.tag("room")
        if before.source != "fritzbox" and room in ("Salon", "Soggiorno"):
            room = "Living room"
        assert after.tag("room") == room
        assert after._replace(tags=before.tags) == before


def test_three_systems_one_room_end_to_end(tmp_path: Path) -> None:
    """The three simulators polled into the embedded store, the Overkiz history backfilled:
    a query by room gives readings of all three systems, polled and historical alike."""
    with FritzboxSimulator() as fritz, ThinknxSimulator() as knx, OverkizSimulator() as ok:
        config = parse_config(f"""
[store]
path = "{tmp_path / 'collector.sqlite3'}"
[spool]
path = "{tmp_path / 'spool.sqlite3'}"
flush_interval = 0.2

[[fritzbox]]
name = "home"
url = "{fritz.url}"
tr064_url = "{fritz.tr064_url}"
username = "{fritz.username}"
password = "{fritz.password}"
room_aliases = {{ "Wohnzimmer" = "Living room" }}
  [fritzbox.rooms]
  "Wohnzimmer" = "Wohnzimmer"
  "09995 0421803" = "Bathroom"

[[thinknx]]
name = "villa"
url = "{knx.url}"
username = "{knx.username}"
password = "{knx.password}"
room_aliases = {{ "Soggiorno" = "Living room", "Bagno" = "Bathroom" }}
{_objects(knx)}

[[overkiz]]
name = "tahoma"
url = "{ok.url}"
username = "{ok.username}"
password = "{ok.password}"
room_aliases = {{ "Salon" = "Living room" }}
""", tmp_path / "collector.toml", env={})

        async def collect() -> None:
            app = App(config)
            try:
                outcomes = await app.once()
                assert all(o.ok for o in outcomes), [o.errors for o in outcomes]
                since = datetime.now(UTC) - timedelta(hours=12)
                (backfilled,) = await run_backfill(app, since, source_name="overkiz:tahoma")
                assert backfilled.points > 0 and not backfilled.errors
            finally:
                await app.aclose()

        asyncio.run(collect())
        bath_guid = _guid(knx, "Termostato Bagno")
    living = {(tags["source"], tags["device"]) for _, tags, _, _ in
              rows(config, "temperature_c", room="Living room")}
    assert {"fritzbox", "thinknx", "overkiz"} <= {source for source, _ in living}
    assert ("fritzbox", "Wohnzimmer") in living
    assert ("thinknx", "Termostato Soggiorno") in living
    assert ("overkiz", "Living room air") in living
    # the FRITZ! device mapped by AIN, beside the Thinknx bathroom
    bath = {(tags["source"], tags["device_id"]) for _, tags, _, _ in
            rows(config, "temperature_c", room="Bathroom")}
    assert {("fritzbox", "099950421803"), ("thinknx", bath_guid)} <= bath
    # no reading keeps a site's own name of a room that has a house-wide one
    for measurement in ("temperature_c", "setpoint_c", "energy_wh", "energy_period_wh"):
        for _, tags, _, _ in rows(config, measurement):
            assert tags.get("room") not in ("Wohnzimmer", "Soggiorno", "Bagno", "Ground floor")
    # the backfilled Overkiz history (hours before the poll) is in the room too
    overkiz_times = [t for t, tags, _, _ in rows(config, "temperature_c", room="Living room")
                     if tags["source"] == "overkiz"]
    assert min(overkiz_times) < (datetime.now(UTC) - timedelta(hours=6)).timestamp() * 1e9


def _objects(knx: ThinknxSimulator) -> str:
    return "\n".join(
        f'[[thinknx.objects]]\nguid = "{o["guid"]}"\nkind = "{o["kind"]}"\nname = "{o["name"]}"\n'
        f'room = "{o["room"]}"' + (f'\nquantity = "{o["quantity"]}"\nunit = "{o["unit"]}"'
                                   if "quantity" in o else "")
        for o in knx.config_dict()["objects"])


def _guid(knx: ThinknxSimulator, name: str) -> str:
    return next(o["guid"] for o in knx.config_dict()["objects"] if o["name"] == name)
