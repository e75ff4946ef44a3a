"""``report.html`` in a real headless browser: it draws every plot from file://, offline,
without a console error.

Needs Debian's ``chromium`` and ``chromium-driver`` (``make test`` installs them): without
them the test skips visibly, and fails in CI (``CI=true``).
"""

from __future__ import annotations

import io
import os
import shutil
import struct
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from collector.lineprotocol import encode_many
from collector.outputs.report import write_report
from collector.stores.sqlite import SqliteStore
from tests.needs import in_ci, module
from tests.outputs.test_report import BERLIN, HOUSE

WIDTH = 1200


def browser_or_skip(environ: Mapping[str, str]) -> tuple[str, str]:
    """(chromium, chromedriver); else a visible skip, or a failure in CI."""
    chromium = next((found for name in ("chromium", "chromium-browser", "google-chrome")
                     if (found := shutil.which(name))), None)
    driver = shutil.which("chromedriver")
    if chromium is None or driver is None:
        missing = " and ".join(n for n, p in (("chromium", chromium), ("chromedriver", driver))
                               if p is None)
        if in_ci(environ):
            pytest.fail(f"{missing} missing in CI: `make chromium` installs them")
        pytest.skip(f"{missing} not installed (apt-get install chromium chromium-driver)")
    return chromium, driver


def test_a_missing_browser_skips_locally_and_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(pytest.skip.Exception, match="not installed"):
        browser_or_skip({})
    with pytest.raises(pytest.fail.Exception, match="missing in CI"):
        browser_or_skip({"CI": "true"})


@pytest.fixture
def driver() -> Iterator[Any]:
    chromium, chromedriver = browser_or_skip(os.environ)
    webdriver = module("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    # every host name unresolvable: a page that reached out for a script would show errors
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                f"--window-size={WIDTH},900", "--hide-scrollbars",
                "--host-resolver-rules=MAP * ~NOTFOUND"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    browser = webdriver.Chrome(options=options, service=Service(executable_path=chromedriver))
    browser.set_page_load_timeout(60)
    try:
        yield browser
    finally:
        browser.quit()


def _assert_self_contained(driver: Any) -> None:
    """Nothing loaded besides the page itself, and no console error."""
    loaded = driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)")
    assert loaded == []
    errors = [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
    assert errors == []


def _png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    return width, height


def test_the_report_draws_every_plot_in_a_browser(driver: Any, tmp_path: Path) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    store = SqliteStore(tmp_path / "collector.sqlite3")
    store.write_sync(encode_many(HOUSE))
    store.close()
    page = write_report(tmp_path / "collector.sqlite3", tmp_path / "report.html", tz=BERLIN)

    driver.get("about:blank")
    blank = driver.get_screenshot_as_png()
    driver.get(page.as_uri())
    WebDriverWait(driver, 30).until(lambda d: d.execute_script(
        "return document.querySelectorAll('.js-plotly-plot .main-svg').length") >= 5)
    drawn = driver.execute_script("""
        const plots = [...document.querySelectorAll('.js-plotly-plot')];
        return {plots: plots.map(p => p.id),
                traces: plots.map(p => p.data.length),
                lines: document.querySelectorAll('.scatterlayer .trace path.js-line').length,
                bars: document.querySelectorAll('.barlayer .point').length,
                titles: plots.map(p => p.layout.title.text),
                plotly: typeof window.Plotly};
    """)
    assert drawn["plotly"] == "object"
    assert drawn["plots"] == ["plot0", "plot1", "plot2", "plot3", "plot4"]
    assert drawn["titles"] == ["Power over time", "Energy per day (device statistics)",
                               "Energy per day (meter)",
                               "Temperature (solid) and target setpoint (dashed) per room",
                               "State timelines"]
    # power: 2 devices; statistics and meter: 1 device each; climate: 3 temperatures and
    # 1 setpoint of the one room; timelines: one bar trace per label (on, off, registered)
    assert drawn["traces"] == [2, 1, 1, 4, 3]
    assert drawn["lines"] >= 2 + 4
    # bars: 2 days of statistics, 1 day of meter, 3 timeline segments
    assert drawn["bars"] == 2 + 1 + 3
    _assert_self_contained(driver)

    height = driver.execute_script("return document.body.scrollHeight")
    driver.set_window_size(WIDTH, min(int(height) + 100, 6000))
    shot = tmp_path / "report.png"
    assert driver.save_screenshot(str(shot))
    png = shot.read_bytes()
    width, shot_height = _png_size(png)
    assert width >= WIDTH - 20 and shot_height > 2000
    # plots, not an empty page: far more bytes than a blank page of the browser
    assert len(png) > 20 * len(blank)
    keep = os.environ.get("COLLECTOR_REPORT_SCREENSHOT")
    if keep:
        shutil.copyfile(shot, keep)


def test_the_demos_report_draws_all_three_systems(driver: Any, tmp_path: Path) -> None:
    """The page the demo writes from the three simulators: every plot drawn, the living
    room's panel with lines of all three systems."""
    from rich.console import Console
    from selenium.webdriver.support.ui import WebDriverWait

    from collector.cli.demo import run_demo

    run_demo(seconds=4.0, out_dir=tmp_path, console=Console(file=io.StringIO()))
    driver.get((tmp_path / "report.html").as_uri())
    WebDriverWait(driver, 60).until(lambda d: d.execute_script(
        "return document.querySelectorAll('.js-plotly-plot .main-svg').length") >= 5)
    names = driver.execute_script("""
        return [...document.querySelectorAll('.js-plotly-plot')].map(
            p => p.data.map(t => t.name));
    """)
    power, stats, meter, _, states = names
    assert {n.rsplit("(", 1)[1] for n in power} == {"fritzbox)", "thinknx)", "overkiz)"}
    assert {n.rsplit("(", 1)[1] for n in stats} == {"fritzbox)", "overkiz)"}
    assert meter and all(n.endswith("(overkiz)") for n in meter)  # backfilled days
    rooms = driver.execute_script(
        "return document.getElementById('plot3').data.map(t => [t.legendgroup, t.name])")
    living = sorted(name for room, name in rooms if room == "Living room")
    # the living room of the three simulated houses (the demo's room aliases join
    # Wohnzimmer and Soggiorno to it): their temperatures and target setpoints, each once
    assert living == sorted([
        "temperature · Fernseher (fritzbox)", "temperature · Wohnzimmer (fritzbox)",
        "temperature · Termostato Soggiorno (thinknx)",
        "temperature · Living room air (overkiz)",
        "temperature · Heater 1 temperature (overkiz)",
        "setpoint · Wohnzimmer (fritzbox)", "setpoint · Termostato Soggiorno (thinknx)",
        "setpoint · Clima Soggiorno (thinknx)", "setpoint · Heater 1 (overkiz)"])
    assert any("voip_status" in str(t) for t in driver.execute_script(
        "return document.getElementById('plot4').data.map(t => t.y)"))
    assert states
    _assert_self_contained(driver)
