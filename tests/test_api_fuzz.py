"""A bounded fuzz run: schemathesis generates requests from the app's own OpenAPI schema (valid and
invalid bodies, both generation modes) against a fake pipeline; no request may end in a 500.

The only 5xx allowed are the documented ones: 501 (the fake pipeline has no index, so /documents
cannot add to it) and 503 (busy or loading).

Bounded to `MAX_EXAMPLES` per operation so it stays a fast test. The figures (requests, server errors) are
printed at the end of the module (`pytest -s` shows them) and checked by the last test.
"""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="pip install schemathesis (the dev extra)")
from hypothesis import HealthCheck, settings  # noqa: E402

from rag.api import create_app  # noqa: E402
from rag.settings import Settings  # noqa: E402

from .test_api import BASE  # noqa: E402
from .test_api_hardening import EncodingPipeline  # noqa: E402 - encodes the question as the tokenizers do

MAX_EXAMPLES = 60  # per operation and generation phase

app = create_app(Settings(queue_size=8), pipeline=EncodingPipeline())
schema = schemathesis.openapi.from_asgi("/openapi.json", app, headers={"Host": "localhost"})
TALLY = {"requests": 0, "500": 0, "by_status": {}}
DOCUMENTED_5XX = {501, 503}
FAILURES: list[str] = []


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_request_ends_in_a_server_error(case):
    response = case.call(base_url=BASE, headers={"Host": "localhost"})
    TALLY["requests"] += 1
    TALLY["by_status"][response.status_code] = TALLY["by_status"].get(response.status_code, 0) + 1
    if response.status_code >= 500 and response.status_code not in DOCUMENTED_5XX:
        TALLY["500"] += 1
        FAILURES.append(f"{case.method} {case.path} {case.body!r:.200} -> {response.status_code} {response.text:.200}")
        raise AssertionError(FAILURES[-1])


def test_zz_fuzz_figures():
    """Runs after the parametrized test (same module, later in file): the run was not empty."""
    print(f"\nfuzz: {TALLY['requests']} requests, {TALLY['500']} server errors; statuses {sorted(TALLY['by_status'].items())}")
    assert TALLY["requests"] >= 100 and TALLY["500"] == 0, (TALLY, FAILURES[:5])
