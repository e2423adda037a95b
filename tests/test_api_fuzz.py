"""A bounded fuzz run: schemathesis generates requests from the app's own OpenAPI schema (valid and
invalid bodies, both generation modes) against a fake pipeline; no request may end in a 500.

The only 5xx allowed are the documented ones: 501 (the fake pipeline has no index, so /documents
cannot add to it) and 503 (busy or loading).

Bounded to `MAX_EXAMPLES` per operation; still several seconds (hypothesis, schemathesis and some
hundred requests), so the module is `slow`. A second test checks, on its own, that the fuzzing is not
vacuous: every route is in the schema and generated requests get through to the pipeline (`pytest -s`
prints what each route answered).
"""

from __future__ import annotations

from collections import Counter

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="pip install schemathesis (the dev extra)")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from rag.api import create_app  # noqa: E402
from rag.settings import Settings  # noqa: E402

from .test_api import BASE  # noqa: E402
from .test_api_hardening import encoding_pipeline  # noqa: E402 - encodes the question as the tokenizers do

pytestmark = pytest.mark.slow

MAX_EXAMPLES = 60  # per operation and generation phase
HEADERS = {"Host": "localhost"}
ROUTES = {"GET /health", "POST /ask", "POST /ask/stream", "GET /v1/models", "POST /v1/chat/completions",
          "GET /documents", "POST /documents", "DELETE /documents/{doc_id}"}  # fmt: skip

app = create_app(Settings(queue_size=8), pipeline=encoding_pipeline())
schema = schemathesis.openapi.from_asgi("/openapi.json", app, headers=HEADERS)
DOCUMENTED_5XX = {501, 503}


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_request_ends_in_a_server_error(case):
    response = case.call(base_url=BASE, headers=HEADERS)
    if response.status_code >= 500 and response.status_code not in DOCUMENTED_5XX:
        raise AssertionError(
            f"{case.method} {case.path} {case.body!r:.200} -> {response.status_code} {response.text:.200}"
        )


def test_the_fuzzing_covers_every_route_and_reaches_the_pipeline():
    """Not vacuous: the schema holds every route, and generated requests (both modes, a few per route) are
    answered (200) as well as refused (4xx) — not all stopped at the Host guard or by validation."""
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.label for op in operations} == ROUTES
    statuses: dict[str, Counter] = {}
    for op in operations:
        seen = statuses[op.label] = Counter()
        modes = st.one_of([op.as_strategy(generation_mode=mode) for mode in schemathesis.GenerationMode])

        @settings(
            max_examples=10, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None
        )
        @given(case=modes)
        def call(case):
            seen[case.call(base_url=BASE, headers=HEADERS).status_code] += 1  # noqa: B023 - call() runs in this iteration

        call()
    for label, seen in statuses.items():
        print(f"\nfuzz {label}: {sorted(seen.items())}", end="")
    assert all(statuses.values()), statuses  # every route was called
    assert statuses["POST /ask"][200] and statuses["POST /ask"][422], statuses["POST /ask"]
    assert statuses["GET /health"][200] == sum(statuses["GET /health"].values()), statuses["GET /health"]
