"""The back-off after refused credentials, shared by the sources' clients."""

from __future__ import annotations

import pytest

from collector.errors import AuthError
from collector.sources.backoff import AuthBackoff


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_periods_double_up_to_the_limit_and_a_success_resets_them() -> None:
    clock = FakeClock()
    backoff = AuthBackoff(clock=clock, initial_s=10.0, max_s=35.0)
    periods = []
    for _ in range(4):
        periods.append(backoff.failed(AuthError("refused")))
        clock.now += periods[-1]  # the period is over: the next refusal starts a new one
    assert periods == [10.0, 20.0, 35.0, 35.0]
    backoff.succeeded()
    assert backoff.error is None
    assert backoff.failed(AuthError("refused")) == 10.0


def test_check_raises_the_remembered_error_only_while_the_period_lasts() -> None:
    clock = FakeClock()
    backoff = AuthBackoff(clock=clock, initial_s=60.0)
    backoff.check()  # nothing refused yet
    backoff.failed(AuthError("user collector: wrong password"))
    clock.now += 59.5
    with pytest.raises(AuthError, match=r"^user collector: wrong password$"):
        backoff.check()
    clock.now += 0.5
    backoff.check()
    assert isinstance(backoff.error, AuthError)  # remembered until a success


def test_refusals_within_a_running_period_do_not_lengthen_it() -> None:
    clock = FakeClock()
    backoff = AuthBackoff(clock=clock, initial_s=60.0, max_s=3600.0)
    assert backoff.failed(AuthError("a")) == 60.0
    clock.now += 15.0
    assert backoff.failed(AuthError("b")) == 45.0  # the rest of the first period
    clock.now += 45.0
    assert backoff.failed(AuthError("c")) == 120.0  # doubled once, not twice
