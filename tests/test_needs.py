"""A missing tool or module skips the tests that need it on a developer's machine and fails
them in CI, whichever of the two CI switches is set."""

from __future__ import annotations

import pytest

from tests.needs import in_ci, module, tool

CI_ENVIRONMENTS = [{"CI": "true"}, {"CI": "TRUE "}, {"COLLECTOR_REQUIRE_INTEGRATION": "1"}]


@pytest.mark.parametrize("environ", [{}, {"CI": "false"}, {"COLLECTOR_REQUIRE_INTEGRATION": "0"}])
def test_outside_ci_a_missing_tool_or_module_is_a_visible_skip(environ: dict[str, str]) -> None:
    assert not in_ci(environ)
    with pytest.raises(pytest.skip.Exception, match=r"no-such-tool not installed \(get it\)"):
        tool("no-such-tool", "get it", environ)
    with pytest.raises(pytest.skip.Exception, match="Python module no_such_module not installed"):
        module("no_such_module", environ)


@pytest.mark.parametrize("environ", CI_ENVIRONMENTS)
def test_in_ci_a_missing_tool_or_module_fails(environ: dict[str, str]) -> None:
    assert in_ci(environ)
    with pytest.raises(pytest.fail.Exception, match=r"no-such-tool missing in CI: get it"):
        tool("no-such-tool", "get it", environ)
    with pytest.raises(pytest.fail.Exception, match="no_such_module missing in CI"):
        module("no_such_module", environ)


def test_what_is_there_is_given_back() -> None:
    assert tool("sh", "it is everywhere", {}).endswith("/sh")
    assert module("json", {}).dumps([1]) == "[1]"
