"""schemathesis against the robotics routes of the served OpenAPI document, with a key that
holds `robotics:write` (the ingest service's own run uses keys without it): no 500s, every
response matches the schema, and an open session is there for the id-taking routes to find."""

from __future__ import annotations

from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from robotrace_assets.api.config import ApiConfig
from robotrace_assets.ingest import keys
from robotrace_assets.settings import Settings
from robotrace_assets_tests.api.conftest import start_service

EXAMPLES_PER_OPERATION = 15
BRIEF = "tb_01KT9WNH80TB0000000000000A"


def test_robotics_routes_have_no_500_and_conform(s3, bucket: str, tmp_path: Path) -> None:
    config = ApiConfig(
        database_url=f"sqlite:///{tmp_path / 'api.sqlite3'}",
        settings=Settings.from_env(),
        rate_per_s=1000.0,
        rate_burst=1000,
    )
    service = start_service(config, bucket, s3)
    try:
        tenant = service.tenant("fuzz")
        headers = {"Authorization": f"Bearer {service.key(tenant, (keys.SCOPE_ROBOTICS,))}"}
        with service.client() as client:
            made = client.post(
                "/v1/robotics/sessions",
                json={
                    "task_brief_id": BRIEF,
                    "operator_id": "op_01KT9WNH80AAAAAAAAAAAAAAAB",
                    "tier": 1,
                },
                headers=headers,
            )
            assert made.status_code == 201
        schema = schemathesis.openapi.from_url(f"{service.url}/api/openapi.json")
        operations = [
            result.ok()
            for result in schema.get_all_operations()
            if "/v1/robotics/" in result.ok().path
        ]
        assert len(operations) == 6
        failures: list[str] = []
        for operation in operations:
            failures.extend(_exercise(operation, service.url, headers))
        assert not failures, "\n\n".join(failures)
    finally:
        service.stop()


def _exercise(operation, base_url: str, headers: dict[str, str]) -> list[str]:
    # Schema-valid bodies can still be refused for what a schema cannot state: an unknown task
    # brief (404), an unsigned webhook (401), a closed room (409). Every other check runs.
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def exercise(case) -> None:
        case.call_and_validate(
            base_url=base_url, headers=headers, excluded_checks=[positive_data_acceptance]
        )

    try:
        exercise()
    except Exception as error:  # collect every operation's failure, then report them all
        return [f"{operation.label}: {type(error).__name__}: {error}"[:2000]]
    return []
