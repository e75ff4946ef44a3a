"""The per-session rate limiter: never early, and the long limits survive a restart."""

from __future__ import annotations

import itertools
import stat
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from collector.sources.overkiz.limits import Category, RateLimiter


class FakeClock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_documented_periods() -> None:
    assert Category.BULK_LOAD.period_s == 86_400.0
    assert Category.POLLING.period_s == 1.0
    assert Category.BULK_HISTORY.period_s == 1728.0
    assert Category.EXEC.period_s == 1728.0


def test_waits_until_the_period_has_passed() -> None:
    clock = FakeClock()
    limiter = RateLimiter(None, clock=clock)
    assert limiter.wait_s(Category.POLLING) == 0.0
    limiter.record(Category.POLLING)
    clock.now += 0.25
    assert limiter.wait_s(Category.POLLING) == 0.75
    clock.now += 0.75
    assert limiter.wait_s(Category.POLLING) == 0.0
    # other categories are independent
    assert limiter.wait_s(Category.BULK_LOAD) == 0.0


def test_configured_slower_polling() -> None:
    clock = FakeClock()
    limiter = RateLimiter(None, clock=clock, slower={Category.POLLING: 5.0})
    limiter.record(Category.POLLING)
    clock.now += 1.0
    assert limiter.wait_s(Category.POLLING) == 4.0


def test_setup_limit_survives_a_new_limiter(tmp_path: Path) -> None:
    path = tmp_path / "state" / "overkiz-home.limits.json"
    clock = FakeClock()
    limiter = RateLimiter(path, clock=clock)
    limiter.record(Category.BULK_LOAD)
    limiter.completed(Category.BULK_LOAD)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    clock.now += 3600.0
    again = RateLimiter(path, clock=clock)
    assert again.wait_s(Category.BULK_LOAD) == 86_400.0 - 3600.0
    clock.now += 86_400.0
    assert again.wait_s(Category.BULK_LOAD) == 0.0


def test_a_setup_load_that_never_got_its_answer_binds_only_its_own_process(
        tmp_path: Path) -> None:  # fmt: skip
    """Killed while the daily setup load was under way: the next process (a new session)
    may load the setup; the killed one would have waited the day."""
    path = tmp_path / "limits.json"
    clock = FakeClock()
    killed = RateLimiter(path, clock=clock)
    killed.record(Category.BULK_LOAD)
    assert killed.wait_s(Category.BULK_LOAD) == 86_400.0
    assert not path.exists()
    assert RateLimiter(path, clock=clock).wait_s(Category.BULK_LOAD) == 0.0


def test_short_limits_are_not_written(tmp_path: Path) -> None:
    path = tmp_path / "limits.json"
    limiter = RateLimiter(path, clock=FakeClock())
    limiter.record(Category.POLLING)
    limiter.completed(Category.POLLING)
    assert not path.exists()


def test_damaged_state_waits_a_full_period(tmp_path: Path) -> None:
    path = tmp_path / "limits.json"
    path.write_text("{not json", encoding="utf-8")
    limiter = RateLimiter(path)
    assert limiter.wait_s(Category.BULK_LOAD) > 86_000.0
    assert limiter.wait_s(Category.POLLING) == 0.0


@given(st.lists(st.floats(min_value=0.0, max_value=3.0), min_size=1, max_size=50))
def test_calls_that_obey_wait_are_never_closer_than_the_period(steps: list[float]) -> None:
    clock = FakeClock()
    limiter = RateLimiter(None, clock=clock)
    sent: list[float] = []
    for step in steps:
        clock.now += step
        if limiter.wait_s(Category.POLLING) == 0.0:
            limiter.record(Category.POLLING)
            sent.append(clock.now)
    assert sent
    assert all(b - a >= 1.0 for a, b in itertools.pairwise(sent))
