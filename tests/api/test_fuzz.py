"""Property-based fuzzing of the whole OpenAPI document with schemathesis: no input may
produce a 5xx, and every response must conform to the schema. Bounded for CI.

Driven through Hypothesis directly (one strategy per operation) rather than
schemathesis's pytest plugin, which does not support pytest 9 yet.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance
from tests.api.conftest import Api

EXAMPLES_PER_OPERATION = 40
# The operations are fuzzed in shards (every SHARDS-th operation), so that pytest-xdist
# spreads the ~2 minutes per engine over both workers instead of one test holding a
# worker at the end of the run.
SHARDS = 4


@pytest.mark.parametrize("shard", range(SHARDS))
def test_no_input_makes_a_server_error(api: Api, shard: int) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", api.app)
    every = sorted((result.ok() for result in schema.get_all_operations()), key=lambda o: o.label)
    assert len(every) >= 7
    operations = every[shard::SHARDS]
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
