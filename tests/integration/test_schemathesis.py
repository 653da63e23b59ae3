"""schemathesis against the app (ASGI, a real admin token, SQLite and PostgreSQL): every answer is
documented, matches its schema, and none is a 5xx (issue 12: "an OpenAPI document that tells the truth").

Each operation gets its documented examples, then EXAMPLES generated cases that fit the document
and EXAMPLES that do not (wrong types, out-of-bounds values, missing fields). Left out: the event
stream (it holds the connection for `timeout` seconds by design) and the node-facing `/boot/n/`
and `/agent/` routes, which are being rewritten (boot-token trust model).

(schemathesis' own pytest plugin is not used: its subtests do not run under pytest 9.)
"""

from __future__ import annotations

import re
from typing import Any

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from dgxie.app import create_app

CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]
EXAMPLES = 15  # per operation, mode and database: the whole run stays within a few minutes
LEFT_OUT = re.compile(r"^/(boot/n/|agent/)|/events/stream$")


def _run(operation: Any, strategy: st.SearchStrategy[Any], headers: dict[str, str], seen: list[int]) -> None:
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
              database=None)
    @given(case=strategy)
    def check(case: Any) -> None:
        seen[0] += 1
        case.call_and_validate(headers=headers, checks=CHECKS)

    check()


def test_api_matches_its_openapi_document(ctx, auth) -> None:  # type: ignore[no-untyped-def]
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(ctx))
    headers = auth("admin")
    failures: list[str] = []
    operations, seen = 0, [0]
    for result in schema.get_all_operations():
        op = result.ok()
        if LEFT_OUT.search(op.path):
            continue
        operations += 1
        strategies = [*schema.get_strategies_from_examples(op), op.as_strategy(GenerationMode.POSITIVE),
                      op.as_strategy(GenerationMode.NEGATIVE)]
        for i, strategy in enumerate(strategies):
            try:
                _run(op, strategy, headers, seen)
            except Unsatisfiable:
                assert i == len(strategies) - 1, f"{op.method.upper()} {op.path}: no case fits its document"
                # negative mode: nothing can break the document (no parameters, or only free strings)
            except (Exception, BaseExceptionGroup) as exc:  # every operation is tried; failures reported together
                failures.append(f"{op.method.upper()} {op.path}: {exc}")
    print(f"schemathesis: {operations} operations, {seen[0]} cases, {len(failures)} failures")
    assert operations >= 45
    assert not failures, "\n\n".join(failures)
