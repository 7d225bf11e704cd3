"""Loaded by Schemathesis (`SCHEMATHESIS_HOOKS=tests.schemathesis_hooks`) in the fuzz run of
tests/test_schemathesis.py: organization A fuzzes, organization B owns real objects.

- Half of the generated path parameters are swapped for B's real ids of the same kind, so
  object-level authorization is exercised with ids that exist, not only with random ones.
- `no_cross_tenant_reads` fails any response to A that succeeds on B's object or carries one
  of B's ids or B's private marker text.

What B owns is handed over in `SUPPORTAI_FUZZ_FOREIGN` (JSON): `ids` by path kind
(`contexts`, `knowledge/files`, …), `messages` by kind, and `marker`. What the check saw is written at exit to the JSON file
named by `SUPPORTAI_FUZZ_EVIDENCE`, so the test can tell that it ran and on what."""

from __future__ import annotations

import atexit
import json
import os
import re
from collections import Counter

import schemathesis
from hypothesis import strategies as st

FOREIGN = json.loads(os.environ.get("SUPPORTAI_FUZZ_FOREIGN", '{"ids": {}, "messages": {}, "marker": ""}'))
_KIND = re.compile(r"^/api/v1/(?P<kind>.+?)/\{id\}")
_FOREIGN_VALUES = [value for value in (*FOREIGN["ids"].values(), *FOREIGN["messages"].values()) if value]
if FOREIGN["marker"]:
    _FOREIGN_VALUES.append(FOREIGN["marker"])
EVIDENCE = Counter()


@atexit.register
def _write_evidence() -> None:
    if os.environ.get("SUPPORTAI_FUZZ_EVIDENCE"):
        with open(os.environ["SUPPORTAI_FUZZ_EVIDENCE"], "w") as handle:
            json.dump(EVIDENCE, handle)


def _foreign_parameters(path: str, path_parameters: dict) -> dict | None:
    match = _KIND.match(path)
    if match is None or match["kind"] not in FOREIGN["ids"]:
        return None
    swapped = dict(path_parameters, id=FOREIGN["ids"][match["kind"]])
    if "message_id" in path_parameters and match["kind"] in FOREIGN["messages"]:
        swapped["message_id"] = FOREIGN["messages"][match["kind"]]
    return swapped


@schemathesis.hook
def flatmap_path_parameters(context, path_parameters):
    swapped = (
        _foreign_parameters(context.operation.path, path_parameters or {}) if context.operation else None
    )
    if swapped is None:
        return st.just(path_parameters)
    return st.sampled_from([path_parameters, swapped])


@schemathesis.check
def no_cross_tenant_reads(ctx, response, case):
    """Organization A must never reach, or even see the ids of, organization B's objects."""
    parameters = case.path_parameters or {}
    EVIDENCE["responses"] += 1
    foreign_ids = set(map(str, parameters.values())) & set(_FOREIGN_VALUES)
    if foreign_ids:
        EVIDENCE[f"foreign_id_{response.status_code}"] += 1
    if foreign_ids and 200 <= response.status_code < 300:
        raise AssertionError(f"{case.method} {case.formatted_path} reached another organization's object")
    text = response.text or ""
    leaked = [value for value in _FOREIGN_VALUES if value in text]
    if leaked:
        raise AssertionError(f"Response carries another organization's data: {leaked}")


# --- Input the database cannot hold (issue 13, item 8) ---------------------------------------
# Every third call has one of these written into its query string or JSON body just before it
# is sent: a NUL (`\u0000`) in a value or a key, a lone surrogate, or nesting far past the
# parser guard's limit. Each was a 500 (Postgres DataError, RecursionError) before the guard.
_DEEP: list = []
for _level in range(400):
    _DEEP = [_DEEP]
_POISONS = (
    ("nul_value", lambda: "a\u0000b"),
    ("surrogate", lambda: "\ud800"),
    ("deep", lambda: _DEEP),
)
POISONED: dict[str, str] = {}
_CALLS = Counter()


@schemathesis.hook
def before_call(context, case, kwargs):
    _CALLS["all"] += 1
    if _CALLS["all"] % 3:
        return
    if isinstance(case.body, dict) and case.media_type == "application/json":
        kind, make = _POISONS[_CALLS["body"] % len(_POISONS)]
        _CALLS["body"] += 1
        key = next(iter(case.body), "extra")
        case.body[key] = make()
        if kind == "nul_value":
            case.body["k\u0000"] = 1
        POISONED[case.id] = f"body_{kind}"
    elif case.method.upper() == "GET":
        kind, make = _POISONS[_CALLS["query"] % 2]  # a query string holds text, not nesting
        _CALLS["query"] += 1
        query = case.query if isinstance(case.query, dict) else {}
        key = next(iter(query), "q")
        query[key] = make()
        case.query = query
        POISONED[case.id] = f"query_{kind}"


@schemathesis.check
def unstorable_input_is_refused(ctx, response, case):
    """A poisoned request is refused with 400 (query strings always; a JSON body whenever the
    operation parses it: no 2xx may have stored it), never a 5xx."""
    kind = POISONED.get(case.id)
    if kind is None:
        return
    EVIDENCE[f"poison_{kind}_{response.status_code}"] += 1
    if response.status_code >= 500:
        raise AssertionError(f"{kind}: {case.method} {case.formatted_path} answered {response.status_code}")
    if kind.startswith("query_") and response.status_code != 400:
        raise AssertionError(f"{kind}: {case.method} {case.formatted_path} answered {response.status_code}")
    if (
        kind.startswith("body_")
        and 200 <= response.status_code < 300
        and case.method.upper() in {"POST", "PUT", "PATCH"}
    ):
        raise AssertionError(
            f"{kind}: {case.method} {case.formatted_path} accepted it ({response.status_code})"
        )
