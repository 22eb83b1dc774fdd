"""Personal data in the decision log: ``hashed`` is a keyed hash (HMAC-SHA256) that cannot be
brute-forced without the key; ``omitted`` leaves no request value anywhere in a record, error
messages included (they name the field, not the value)."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from pdp.authzen import Action, Decision, Entity, EvaluationRequest
from pdp.decision_log import DecisionLog, DecisionReader
from pdp.entities.database import open_database
from pdp.settings import Settings
from tests.conftest import POLICIES, fresh_data_dir, make_service

DOB = "1984-07-19"


@pytest.fixture
def data_dir() -> Path:
    return fresh_data_dir("personal-data")


def logged(settings: Settings) -> Iterator[tuple[DecisionLog, DecisionReader]]:
    log = DecisionLog.from_settings(settings)
    assert log is not None
    log.start()
    reader = DecisionReader(open_database(log.database.url))
    try:
        yield log, reader
    finally:
        reader.close()
        log.close()


def canonical(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def test_hashed_values_are_an_hmac_under_a_key_generated_into_the_data_directory(
        data_dir: Path) -> None:
    settings = Settings(data_dir=data_dir, decision_log_personal_data="hashed")
    for log, reader in logged(settings):
        request = EvaluationRequest(Entity("user", "ann", {"dob": DOB}), Action("view"),
                                    Entity("doc", "d"), {"dob": DOB})
        log.evaluation("r", request, Decision(True, "permit", ("p",)), "v1", 0.001)
        assert log.flush()
        [row] = reader.latest(1)
    key_file = data_dir / "decision-log.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = bytes.fromhex(key_file.read_text().strip())
    assert len(key) >= 32
    stored = row["context"].rsplit(":", 1)[1]
    assert stored == hmac.new(key, canonical({"dob": DOB}), hashlib.sha256).hexdigest()
    assert row["properties"]["subject"].rsplit(":", 1)[1] == hmac.new(
        key, canonical({"dob": DOB}), hashlib.sha256).hexdigest()
    # brute force over every date of birth in a century, without the key: nothing matches
    day, found = date(1920, 1, 1), None
    while day < date(2020, 1, 1):
        if hashlib.sha256(canonical({"dob": day.isoformat()})).hexdigest() == stored:
            found = day
        day += timedelta(days=1)
    assert found is None
    assert DOB not in json.dumps(row)


def test_a_key_from_the_settings_is_used_and_the_same_key_gives_the_same_digest(
        data_dir: Path) -> None:
    key = "ab" * 32
    settings = Settings(data_dir=data_dir, decision_log_personal_data="hashed",
                        decision_log_hash_key=key)
    rows = []
    for _ in range(2):  # two processes' worth: a restart keeps digests comparable
        for log, reader in logged(settings):
            request = EvaluationRequest(Entity("user", "ann"), Action("view"),
                                        Entity("doc", "d"), {"ssn": "078-05-1120"})
            log.evaluation(None, request, Decision(False), "v1", 0.0)
            assert log.flush()
            rows.append(reader.latest(1)[0])
    expected = hmac.new(bytes.fromhex(key), canonical({"ssn": "078-05-1120"}),
                        hashlib.sha256).hexdigest()
    assert [r["context"].rsplit(":", 1)[1] for r in rows] == [expected, expected]
    assert not (data_dir / "decision-log.key").exists()


def test_omitted_leaves_no_request_value_in_the_errors_column(data_dir: Path) -> None:
    settings = Settings(data_dir=data_dir, decision_log_personal_data="omitted")
    for log, reader in logged(settings):
        request = EvaluationRequest(Entity("user", "ann", {"salary": "98765.4321x"}),
                                    Action("view"), Entity("doc", "d"),
                                    {"dob": "1984-07-19T99", "n": 1234567})
        errors = ("error while evaluating policy `policy0`: error while evaluating `decimal` "
                  "extension function: `98765.4321x` is not a well-formed decimal value",
                  "context.dob: '1984-07-19T99' is not a datetime",
                  "context.n: 1234567 is out of range")
        log.evaluation("r", request, Decision(False, "error", errors=errors), "v1", 0.0)
        assert log.flush()
        [row] = reader.latest(1)
    text = json.dumps(row)
    for value in ("98765.4321x", "1984-07-19T99", "1234567"):
        assert value not in text
    assert row["errors"][0].startswith("error while evaluating policy `policy0`")
    assert row["errors"][1].startswith("context.dob: ")  # the field is named
    assert "context" not in row and "properties" not in row


def test_omitted_redacts_what_cedar_echoes_from_a_real_decision(tmp_path: Path) -> None:
    policies = tmp_path / "set"
    policies.mkdir()
    (policies / "p.cedar").write_text(
        '@id("big-spenders")\npermit (principal, action, resource)\n'
        'when { decimal(context.amount) > decimal("100.0") };\n')
    service = make_service(policies, decision_log_personal_data="omitted")
    service.decision_log = DecisionLog.from_settings(
        service.settings.model_copy(update={"decision_log": "on"}))
    assert service.decision_log is not None
    service.start()
    try:
        body = {"subject": {"type": "user", "id": "ann"}, "action": {"name": "pay"},
                "resource": {"type": "account", "id": "a"},
                "context": {"amount": "31337.42zz"}}
        assert service.evaluations(body) == {"decision": False}
        assert service.decision_log.flush()
        reader = DecisionReader(open_database(service.decision_log.database.url))
        [row] = reader.latest(1)
        reader.close()
    finally:
        service.close()
    assert row["errors"], "the error is still recorded"
    assert "31337.42zz" not in json.dumps(row)


def test_an_unusable_key_is_refused_never_replaced_by_a_weaker_digest(data_dir: Path) -> None:
    with pytest.raises(ValidationError, match="decision_log_hash_key"):
        Settings(data_dir=data_dir, decision_log_hash_key="not hex")
    with pytest.raises(ValidationError, match="at least 16 bytes"):
        Settings(data_dir=data_dir, decision_log_hash_key="abcd")
    (data_dir / "decision-log.key").write_text("garbage\n")
    os.chmod(data_dir / "decision-log.key", 0o600)
    done = subprocess.run(
        [sys.executable, "-m", "pdp", "serve", "--policies", str(POLICIES / "todo"),
         "--port", "1"], env={**os.environ, "PDP_DATA_DIR": str(data_dir),
                              "PDP_DECISION_LOG": "on", "PDP_DECISION_LOG_HASH_KEY": ""},
        capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"cannot start: {data_dir / 'decision-log.key'} must hold a key in hex "
        "(e.g. `openssl rand -hex 32`)"]
