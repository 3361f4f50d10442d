"""Property-based fuzzing of the whole OpenAPI document with schemathesis: no input may
produce a 5xx, and every response must conform to the schema. Bounded for CI.

Driven through Hypothesis directly (one strategy per operation) rather than
schemathesis's pytest plugin, which does not support pytest 9 yet.
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance
from tests.api.conftest import Api

EXAMPLES_PER_OPERATION = 40


def test_no_input_makes_a_server_error(api: Api) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", api.app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 7
    headers = api.as_("admin")
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: schemathesis.Case) -> None:
            case.call_and_validate(
                headers=headers, checks=[not_a_server_error, response_schema_conformance]
            )

        run()
