"""``pdp entities import|export|put|get|delete`` against the same database a PDP serves."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pdp.cli import main
from pdp.entities.sql import SQLEntityStore
from tests.conftest import POLICIES
from tests.entities.databases import Backend


def record(rid: str, owner: str) -> dict[str, Any]:
    return {"uid": {"type": "record", "id": rid},
            "attrs": {"title": "T", "department": "Legal",
                      "owner": {"__entity": {"type": "user", "id": owner}}}, "parents": []}


@pytest.fixture
def pdp(backend: Backend, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> Any:
    monkeypatch.setenv("PDP_DATABASE_URL", backend.url)
    monkeypatch.setenv("PDP_POLICIES", str(POLICIES / "search"))

    def run(*args: str) -> tuple[int, str, str]:
        code = main(["entities", *args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_import_put_get_export_and_delete_round_trip(pdp: Any, tmp_path: Path) -> None:
    lines = tmp_path / "records.jsonl"
    lines.write_text("\n".join(json.dumps(record(r, "bob")) for r in ("901", "902")) + "\n")
    assert pdp("import", str(lines))[:2] == (0, '{"written": 2, "deleted": 0, "version": 1}\n')
    code, out, _ = pdp("put", json.dumps(record("903", "erin")))
    assert code == 0 and json.loads(out)["written"] == 1
    code, out, _ = pdp("get", "record", "903")
    assert code == 0 and json.loads(out)["managed_by"] == "api"
    code, out, _ = pdp("export", "--type", "record")
    assert code == 0 and json.loads(out) == [record(r, o) for r, o in
                                            (("901", "bob"), ("902", "bob"), ("903", "erin"))]
    assert pdp("delete", "record", "902")[0] == 0
    code, _, err = pdp("delete", "record", "902")
    assert code == 1 and "no API-managed entity" in err
    exported = tmp_path / "all.json"
    exported.write_text(pdp("export")[1])
    assert [e["uid"]["id"] for e in json.loads(exported.read_text())] == ["901", "903"]


def test_a_bad_entity_exits_1_naming_it_and_writes_nothing(pdp: Any, tmp_path: Path) -> None:
    bad = record("905", "bob")
    bad["attrs"]["title"] = 5
    source = tmp_path / "import.json"
    source.write_text(json.dumps([record("904", "bob"), bad]))
    code, out, err = pdp("import", str(source))
    assert (code, out) == (1, "")
    assert err == 'error: entity record::"905": attribute `title` must be String, got 5\n'
    assert pdp("export")[1] == "[]\n"


def test_a_running_replica_sees_a_cli_change_after_a_sync(pdp: Any, backend: Backend) -> None:
    replica = SQLEntityStore.open(backend.url, poll_interval=0.1, max_staleness=1)
    try:
        assert replica.get(("record", "906")) is None
        assert pdp("put", json.dumps(record("906", "bob")))[0] == 0
        replica.sync()
        assert replica.get(("record", "906")) is not None
    finally:
        replica.close()


def test_an_unreachable_database_exits_1(pdp: Any, backend: Backend, tmp_path: Path) -> None:
    if backend.relay is None:  # SQLite: a database that cannot even be created
        (tmp_path / "file").write_text("")
        code, _, err = pdp("export", "--database-url", f"sqlite:///{tmp_path}/file/e.db")
    else:
        with backend.unreachable():
            code, _, err = pdp("export")
    assert code == 1 and err.startswith("error: ")
