"""What the tests need from the machine, and what its absence means: a visible skip on a
developer's machine, a failure in CI.

CI is ``CI=true`` (set by most CI services and by .ci/run) or
``COLLECTOR_REQUIRE_INTEGRATION=1`` (set by .ci/run): there ``make test`` installs every tool
and package the tests use, so one that is missing is a broken setup, never a reason to skip.
"""

from __future__ import annotations

import importlib
import os
import shutil
from collections.abc import Mapping
from types import ModuleType
from typing import NoReturn

import pytest


def in_ci(environ: Mapping[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    return (env.get("CI", "").strip().lower() == "true"
            or env.get("COLLECTOR_REQUIRE_INTEGRATION", "").strip() == "1")


def missing(what: str, hint: str, environ: Mapping[str, str] | None = None) -> NoReturn:
    """Skip, or fail in CI, for ``what`` that is not there (``hint``: how to get it)."""
    if in_ci(environ):
        pytest.fail(f"{what} missing in CI: {hint}")
    pytest.skip(f"{what} not installed ({hint})")


def tool(name: str, hint: str, environ: Mapping[str, str] | None = None) -> str:
    """The path of the command ``name``."""
    found = shutil.which(name)
    if found is None:
        missing(name, hint, environ)
    return found


def module(name: str, environ: Mapping[str, str] | None = None) -> ModuleType:
    """``pytest.importorskip`` that fails in CI: the dev extra installs the module."""
    try:
        return importlib.import_module(name)
    except ImportError:
        missing(f"Python module {name}", "pip install -e '.[dev]'", environ)
