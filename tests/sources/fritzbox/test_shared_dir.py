"""The recorded captures in ../shared: skipped visibly where absent, in CI too (a clean
clone of the project need not have them beside it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import SHARED, shared_or_skip


def test_present_directory_is_used(tmp_path: Path) -> None:
    assert shared_or_skip(tmp_path, {"CI": "true"}) == tmp_path


@pytest.mark.parametrize("environ", [{}, {"CI": "false"}, {"CI": ""}, {"CI": "true"},
                                     {"COLLECTOR_REQUIRE_INTEGRATION": "1"}])
def test_absent_directory_is_skipped_elsewhere(tmp_path: Path, environ: dict[str, str]) -> None:
    missing = tmp_path / "shared"
    with pytest.raises(pytest.skip.Exception, match=f"not available: {missing} is absent"):
        shared_or_skip(missing, environ)


def test_the_fixture_looks_beside_the_project() -> None:
    assert Path(__file__).resolve().parents[4] / "shared" == SHARED
