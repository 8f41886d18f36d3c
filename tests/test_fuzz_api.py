"""Fuzzing the API from its own OpenAPI schema (schemathesis), over real HTTP against a real server, on SQLite
and PostgreSQL, signed in as a user and as an admin: no 5xx, no response outside its documented statuses and
schemas, no HTML, whatever the input."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.conftest import DEFAULT_PASSWORD, scripted_llm
from tests.live_server import live_server
from tests.upstream import ScriptedUpstream

EXAMPLES = int(os.environ.get("AGENT_UI_FUZZ_EXAMPLES", "20"))
# Operations that would cut the fuzzer's own ground from under it: ending the session it signs in with.
SPARED = {("POST", "/api/v1/auth/logout")}


@dataclass(frozen=True)
class Target:
    url: str
    headers: dict[str, dict[str, str]]  # by role


def _signed_in(url: str, email: str) -> dict[str, str]:
    """A user's `sk_` key with every scope it may hold (the first user of a server is its admin)."""
    with httpx.Client(base_url=url, timeout=30) as http:
        assert http.post("/api/v1/auth/register", json={"email": email, "password": DEFAULT_PASSWORD}).is_success
        login = http.post("/api/v1/auth/login", json={"email": email, "password": DEFAULT_PASSWORD}).json()
        bearer = {"Authorization": f"Bearer {login['access_token']}"}
        key = http.post("/api/v1/agent/api-keys", json={"name": "fuzz"}, headers=bearer)
        assert key.status_code == 201, key.text
        return {"Authorization": f"Bearer {key.json()['api_key']}"}


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def fuzz_target(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, upstream_server: ScriptedUpstream
) -> Iterator[Target]:
    database_url = request.getfixturevalue("pg_database") if request.param == "postgresql" else None
    data = tmp_path_factory.mktemp(f"fuzz-{request.param}")
    env = {
        "AGENT_UI_LLM": json.dumps(scripted_llm(upstream_server)),
        "AGENT_UI_SANDBOX__BACKEND": "local",
        "AGENT_UI_SANDBOX__MAX_PER_USER": "2",
    }
    with live_server(data / "data", database_url=database_url, extra_env=env) as server:
        suffix = uuid.uuid4().hex[:6]
        headers = {
            "admin": _signed_in(server.url, f"admin-{suffix}@example.com"),
            "user": _signed_in(server.url, f"user-{suffix}@example.com"),
        }
        yield Target(server.url, headers)
        log = Path(data / f"server-{server.url.rsplit(':', 1)[1]}.log")
        if log.exists():
            assert "Traceback" not in log.read_text(), "the server logged an unhandled error while fuzzed"


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def test_no_input_breaks_the_api(fuzz_target: Target) -> None:
    schema = schemathesis.openapi.from_url(f"{fuzz_target.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 30
    failures: list[str] = []
    for operation in operations:
        if (operation.method.upper(), operation.path) in SPARED:
            continue

        @given(case=st.one_of(*(operation.as_strategy(generation_mode=mode) for mode in GenerationMode)))
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case: schemathesis.Case) -> None:
            for role in ("user", "admin"):
                case.call_and_validate(
                    base_url=fuzz_target.url, headers=fuzz_target.headers[role], checks=CHECKS, timeout=30
                )

        try:
            fuzz()
        except Exception as exc:  # every operation is fuzzed; all that failed are reported together
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    assert not failures, "\n\n".join(failures)
