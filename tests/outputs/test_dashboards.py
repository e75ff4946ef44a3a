"""The dashboards as files: generated from the schema, consistent, provisioned as shipped."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

import collector.outputs.dashboards.boards as boards
import collector.outputs.dashboards.grafana as grafana
from collector.outputs.dashboards import dashboards, render, stale
from collector.outputs.dashboards.__main__ import main
from collector.outputs.dashboards.docs import render_docs
from collector.schema import BY_NAME, STATE_BY_NAME, STATES, TABLE, Kind, Measurement

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = ROOT / "dashboards"
DATASOURCE = DASHBOARDS / "provisioning" / "datasources" / "influxdb.yml"
PROVIDER = DASHBOARDS / "provisioning" / "dashboards" / "collector.yml"
DOCS = ROOT / "docs" / "dashboards.md"
UIDS = {"energy.json": "collector-energy", "climate.json": "collector-climate",
        "devices.json": "collector-devices"}
#: Grafana's own macros and the alias patterns of InfluxQL series
BUILTIN = {"timeFilter", "__interval", "__interval_ms"}
_VAR = re.compile(r"\$\{?(\w+)\}?|\[\[(\w+)\]\]")
#: the measurement of a query, on the raw readings or on the hourly rollups
_FROM = re.compile(r'FROM (?:"\$rollups"\.)?"(\w+)"')
_COND_TAG = re.compile(r'"(\w+)" *(?:=~|!~|!=|<>|=)')
_GROUP = re.compile(r"GROUP BY (.*?)(?: fill\(| tz\(|$)")
_STATE_NAME = re.compile(r"\"name\" = '(\w+)'")


def _load(name: str) -> dict[str, Any]:
    data = json.loads((DASHBOARDS / name).read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _targets(board: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return [(panel, target) for panel in board["panels"] for target in panel["targets"]]


def test_the_committed_json_is_what_the_generator_writes(tmp_path: Path) -> None:
    assert stale(DASHBOARDS) == [], "run: python -m collector.outputs.dashboards"
    assert {p.name for p in DASHBOARDS.glob("*.json")} == set(UIDS)
    assert main(["--check", str(DASHBOARDS)]) == 0  # docs/dashboards.md included
    assert DOCS.read_text(encoding="utf-8") == render_docs()
    # --check on a directory with one file changed or missing fails and writes nothing
    docs = tmp_path / "dashboards.md"
    assert main([str(tmp_path), "--docs", str(docs)]) == 0
    assert main(["--check", str(tmp_path), "--docs", str(docs)]) == 0
    (tmp_path / "climate.json").write_text("{}", encoding="utf-8")
    (tmp_path / "devices.json").unlink()
    assert main(["--check", str(tmp_path), "--docs", str(docs)]) == 1
    assert sorted(p.name for p in stale(tmp_path)) == ["climate.json", "devices.json"]
    assert (tmp_path / "climate.json").read_text(encoding="utf-8") == "{}"


def test_uids_and_the_datasource_are_stable() -> None:
    (source,) = yaml.safe_load(DATASOURCE.read_text(encoding="utf-8"))["datasources"]
    assert source["uid"] == grafana.DATASOURCE_UID == "influxdb"
    assert source["type"] == "influxdb"
    assert source["jsonData"]["version"] == "InfluxQL"
    for name, uid in UIDS.items():
        board = _load(name)
        assert board["uid"] == uid
        assert board["editable"] is False
        ids = [p["id"] for p in board["panels"]]
        assert len(ids) == len(set(ids))
        for var in board["templating"]["list"]:
            if var["type"] == "query":
                assert var["datasource"] == {"type": "influxdb", "uid": source["uid"]}
        for panel, target in _targets(board):
            assert panel["datasource"]["uid"] == target["datasource"]["uid"] == source["uid"]
            assert target["rawQuery"] is True


def test_the_datasource_takes_its_secrets_from_the_environment() -> None:
    text = DATASOURCE.read_text(encoding="utf-8")
    (source,) = yaml.safe_load(text)["datasources"]
    # the 2.x/3.x token goes in the Authorization header, from Grafana's environment
    assert source["jsonData"]["httpHeaderName1"] == "Authorization"
    assert source["secureJsonData"]["httpHeaderValue1"] == "Token ${INFLUX_TOKEN}"
    assert source["jsonData"]["dbName"] == "energy"
    for value in source["secureJsonData"].values():
        assert re.fullmatch(r"(Token )?\$\{[A-Z_]+\}", value), value
    assert "password" not in source and "basicAuthPassword" not in source
    # the commented 1.x form takes user and password from the environment too
    assert "${INFLUX_USER}" in text and "${INFLUX_PASSWORD}" in text
    (provider,) = yaml.safe_load(PROVIDER.read_text(encoding="utf-8"))["providers"]
    assert provider["type"] == "file" and provider["allowUiUpdates"] is False


def test_every_variable_a_dashboard_uses_is_defined() -> None:
    for name in UIDS:
        board = _load(name)
        defined = {v["name"] for v in board["templating"]["list"]}
        texts = [v["query"] for v in board["templating"]["list"]]
        for panel, target in _targets(board):
            texts += [target["query"], panel["title"], panel.get("description", "")]
        used = {a or b for text in texts for a, b in _VAR.findall(text)}
        used = {u for u in used if not u.startswith("tag_")}
        assert used - BUILTIN <= defined, (name, used - BUILTIN - defined)
        if any("tz('$timezone')" in t for t in texts):
            assert {"timezone", "price_kwh"} <= defined
        assert {"site", "room", "device"} <= defined


def test_every_measurement_tag_and_state_exists_in_the_schema() -> None:
    measured: set[str] = set()
    for name in UIDS:
        for _panel, target in _targets(_load(name)):
            query = target["query"]
            (measurement,) = _FROM.findall(query)
            assert measurement in BY_NAME, query
            measured.add(measurement)
            allowed = grafana.tags_of(measurement)
            tags = set(_COND_TAG.findall(query))
            group = _GROUP.search(query)
            if group:
                tags |= set(re.findall(r'"(\w+)"', group.group(1)))
            assert tags <= allowed, (query, tags - allowed)
            for state in _STATE_NAME.findall(query):
                assert state in STATE_BY_NAME, query
    assert measured == {m.name for m in TABLE}


def test_panel_units_are_the_schema_units() -> None:
    derived = {"currencyEUR": "* $price_kwh", "dateTimeAsIso": "* 1000"}
    for name in UIDS:
        for panel in _load(name)["panels"]:
            unit = panel["fieldConfig"]["defaults"]["unit"]
            for target in panel["targets"]:
                (measurement,) = _FROM.findall(target["query"])
                if unit in derived:
                    assert derived[unit] in target["query"], panel["title"]
                elif measurement == "collector":
                    metric = re.search(r"\"metric\" = '(\w+)'", target["query"])
                    assert metric is not None
                    assert metric.group(1) in BY_NAME["collector"].sources
                    assert unit == ("s" if metric.group(1).endswith("_s") else "short")
                else:
                    assert unit == grafana.UNIT_IDS[BY_NAME[measurement].unit], panel["title"]


def test_state_panels_map_codes_to_the_schema_labels() -> None:
    checked = set()
    for name in UIDS:
        for panel in _load(name)["panels"]:
            refs = {t["refId"]: t for t in panel["targets"]}
            for override in panel["fieldConfig"]["overrides"]:
                target = refs[override["matcher"]["options"]]
                (state,) = _STATE_NAME.findall(target["query"])
                (prop,) = override["properties"]
                (mapping,) = prop["value"]
                options = {int(k): v["text"] for k, v in mapping["options"].items()}
                expected: dict[int, list[str]] = {}
                for code, label in STATE_BY_NAME[state].codes:
                    expected.setdefault(code, []).append(label)
                assert options == {c: " / ".join(t) for c, t in expected.items()}
                checked.add(state)
    assert {"window_open", "boost", "thermostat_mode", "hvac_mode", "present",
            "voip_status"} <= checked
    assert grafana.state_mappings("alert")[0]["options"]["0"]["text"] == "clear / closed"
    assert len(STATES) > len(checked)  # the rest: the "All states, latest" table


def test_daily_energy_groups_by_calendar_day_in_the_dashboard_time_zone() -> None:
    panels = {p["title"]: p for p in _load("energy.json")["panels"]}
    rolled, raw = (t["query"] for t in panels["Energy per day (meter)"]["targets"])
    # the hourly rollups' last readings, or the raw readings with the rollups off
    assert 'non_negative_difference(last("value")) FROM "$rollups"."energy_wh"' in rolled
    assert 'non_negative_difference(last("value")) FROM "energy_wh"' in raw
    assert "'$rollups' = 'rollup_1h'" in rolled and "'$rollups' != 'rollup_1h'" in raw
    for meter in (rolled, raw):
        assert "GROUP BY time(1d)" in meter and meter.endswith("tz('$timezone')")
        # the meter total only: no per-tariff index, no FRITZ! group
        assert "\"tariff\" = ''" in meter and "\"scope\" != 'group'" in meter
    assert panels["Energy per month"]["timeFrom"] == "1y"


def test_a_measurement_added_to_the_schema_gets_a_panel(monkeypatch: pytest.MonkeyPatch) -> None:
    extra = Measurement("pressure_hpa", "ppm", Kind.GAUGE, "Air pressure", "a new sensor")
    monkeypatch.setattr(boards, "TABLE", (*TABLE, extra))
    monkeypatch.setitem(BY_NAME, extra.name, extra)
    devices = dashboards()[2].to_json()
    (panel,) = [p for p in devices["panels"] if "pressure_hpa" in p["title"]]
    assert panel["fieldConfig"]["defaults"]["unit"] == "ppm"
    assert 'FROM "pressure_hpa"' in panel["targets"][0]["query"]
    # a unit without a Grafana id stops the generator, naming the measurement
    monkeypatch.setitem(BY_NAME, extra.name,
                        Measurement("pressure_hpa", "hPa", Kind.GAUGE, "Air pressure", "x"))
    with pytest.raises(ValueError, match=r"pressure_hpa.*hPa"):
        dashboards()[2].to_json()


def test_queries_name_only_schema_measurements() -> None:
    with pytest.raises(ValueError, match="'power_kw' is not in the schema"):
        grafana.Query("power_kw")
    with pytest.raises(ValueError, match="unknown tags"):
        grafana.Query("power_w", group=("phase",))
    with pytest.raises(ValueError, match="state 'sleep'"):
        grafana.Query("state", state="sleep")


@given(st.sampled_from([m.name for m in TABLE]), st.booleans(), st.booleans())
def test_every_query_filters_on_time_first(measurement: str, totals: bool, tz: bool) -> None:
    text = grafana.Query(measurement, totals=totals, tz=tz).text()
    assert text.startswith(f'SELECT mean("value") FROM "{measurement}" WHERE $timeFilter AND ')
    assert ("\"scope\" != 'group'" in text) is totals
    assert ("\"tariff\" = ''" in text) is (totals and "tariff" in dict(BY_NAME[measurement].tags))
    assert text.endswith("tz('$timezone')") is tz


def test_render_is_deterministic_json() -> None:
    for board in dashboards():
        text = render(board)
        assert text == render(board) and text.endswith("}\n")
        assert json.loads(text)["uid"] == UIDS[board.file]


def test_the_docs_name_every_panel_with_its_unit_and_query() -> None:
    docs = DOCS.read_text(encoding="utf-8")
    for name in UIDS:
        board = _load(name)
        assert f"`{board['uid']}`" in docs
        for panel in board["panels"]:
            unit = panel["fieldConfig"]["defaults"]["unit"]
            row = next(line for line in docs.splitlines()
                       if line.startswith(f"| {panel['title']} |"))
            assert f"`{unit}`" in row
            for target in panel["targets"]:
                assert f"`{target['query']}`" in row
