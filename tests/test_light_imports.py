"""The pure packages load no web framework, database or Cedar (checked in a fresh interpreter)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

HEAVY = ("fastapi", "starlette", "uvicorn", "sqlalchemy", "sqlmodel", "psycopg", "cedarpy")

PROBE = """
import json, sys
import {module}
print(json.dumps(sorted(sys.modules)))
"""


@pytest.mark.parametrize("module", ["pdp.authzen", "pdp.coaz", "pdp.errors"])
def test_importing_a_pure_package_loads_no_web_framework_database_or_cedar(module: str) -> None:
    done = subprocess.run([sys.executable, "-c", PROBE.format(module=module)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=True)
    loaded = json.loads(done.stdout)
    assert module in loaded  # the probe did import it
    heavy = sorted(name for name in loaded if name.split(".")[0] in HEAVY)
    assert heavy == []


def test_the_package_root_still_offers_its_public_names() -> None:
    import pdp
    from pdp.service import PDPService

    assert pdp.PDPService is PDPService
    with pytest.raises(AttributeError):
        pdp.NoSuchName  # noqa: B018
