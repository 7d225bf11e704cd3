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
from urllib.parse import parse_qsl, urlsplit

import schemathesis
from hypothesis import strategies as st

FOREIGN = json.loads(os.environ.get("SUPPORTAI_FUZZ_FOREIGN", '{"ids": {}, "messages": {}, "marker": ""}'))
_KIND = re.compile(r"^/api/v1/(?P<kind>.+?)/\{id\}")
_FOREIGN_VALUES = [
    value
    for value in (
        *FOREIGN["ids"].values(),
        *FOREIGN["messages"].values(),
        *FOREIGN.get("actions", {}).values(),
    )
    if value
]
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
    if "action_id" in path_parameters and match["kind"] in FOREIGN.get("actions", {}):
        swapped["action_id"] = FOREIGN["actions"][match["kind"]]
    return swapped


@schemathesis.hook
def flatmap_path_parameters(context, path_parameters):
    swapped = (
        _foreign_parameters(context.operation.path, path_parameters or {}) if context.operation else None
    )
    if swapped is None:
        return st.just(path_parameters)
    # B's real ids first: Hypothesis favours (and shrinks to) the first choice, so every
    # operation with an id is tried against another organization's objects early, within the
    # run's time budget, however many operations the schema grows to.
    return st.sampled_from([swapped, path_parameters])


# The fuzzer's own API key: its stateful phase reads the key list and revokes what it finds,
# its own key included (a key may revoke itself), after which every request is a 401 and the
# rest of the run tests nothing. Such a call is sent for B's key instead (must be a 404).
OWN_KEY = os.environ.get("SUPPORTAI_FUZZ_OWN_KEY", "")


@schemathesis.hook
def before_call(context, case, kwargs):
    path_parameters = case.path_parameters or {}
    if (
        OWN_KEY
        and case.method.upper() == "DELETE"
        and case.operation.path.startswith("/api/v1/api-keys/")
        and str(path_parameters.get("id")) == OWN_KEY
    ):
        EVIDENCE["own_key_revocation_redirected"] += 1
        case.path_parameters = dict(path_parameters, id=FOREIGN["ids"]["api-keys"])


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
# Every third generated case with a JSON body (else every third GET's query string) gets one
# of these written into it: a NUL (`\u0000`) in a value and a key, or nesting past the parser
# guard's limit. Each was a 500 (Postgres DataError, RecursionError) before the guard. Poisoning as
# cases are generated (`map_case`, not by editing them before the call, which made
# Schemathesis re-validate each one) keeps the run fast; the check recognises a poisoned
# request by its content.
# Deep enough to pass the guard's 32 levels, shallow enough for Schemathesis's own recursive
# handling (the 100,000-deep body is in tests/test_attack_input.py).
_DEEP: list = []
for _level in range(40):
    _DEEP = [_DEEP]
_POISONS = (
    ("nul", lambda: "a\u0000b"),
    ("deep", lambda: _DEEP),
)
_CALLS = Counter()


@schemathesis.hook
def map_case(context, case):
    method = case.method.upper()
    if method != case.operation.method.upper():
        # A probe with a method the operation does not declare must get 405, not the 400
        # that poisoned input gets first; which case is poisoned shifts with every new
        # operation in the schema, so leave such probes alone.
        return case
    if isinstance(case.body, dict) and case.media_type == "application/json":
        _CALLS["body"] += 1
        if _CALLS["body"] % 3 == 0:
            kind, make = _POISONS[(_CALLS["body"] // 3) % len(_POISONS)]
            poisoned = dict(case.body)
            poisoned[next(iter(case.body), "extra")] = make()
            if kind == "nul":
                poisoned["k\u0000"] = 1
            case.body = poisoned
    elif method == "GET":
        _CALLS["query"] += 1
        if _CALLS["query"] % 3 == 0:
            make = _POISONS[0][1]  # a query string holds text, not nesting
            poisoned = dict(case.query or {})
            poisoned[next(iter(poisoned), "q")] = make()
            case.query = poisoned
    return case


def _poison_kind(value) -> str | None:
    """What in `value` no layer below the parser can hold ("nul", "surrogate", "deep"), or None."""
    pending = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return "nul"
            if any("\ud800" <= char <= "\udfff" for char in item):
                return "surrogate"
        elif isinstance(item, (dict, list)):
            if depth > 32:
                return "deep"
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)
    return None


def _sent_poison(response) -> tuple[str | None, str | None]:
    """(query kind, body kind) of what was really sent: the request on the wire, not the case
    (Schemathesis's own checks re-send variants of a case)."""
    request = response.request
    pairs = parse_qsl(urlsplit(request.url).query, keep_blank_values=True)
    query_kind = _poison_kind([text for pair in pairs for text in pair])
    body_kind = None
    if request.body and request.headers.get("Content-Type", "").startswith("application/json"):
        try:  # json.loads takes bytes in any UTF; negative bodies may be no valid text at all
            body_kind = _poison_kind(json.loads(request.body))
        except (ValueError, RecursionError):
            body_kind = None
    return query_kind, body_kind


@schemathesis.check
def unstorable_input_is_refused(ctx, response, case):
    """A request carrying such input is refused with 400 (a query string always; a JSON body
    whenever the operation parses it: no 2xx may have stored it), never a 5xx."""
    query_kind, body_kind = _sent_poison(response)
    if query_kind is None and body_kind is None:
        return
    where, kind = ("query", query_kind) if query_kind else ("body", body_kind)
    method = response.request.method.upper()
    EVIDENCE[f"poison_{where}_{kind}_{response.status_code}"] += 1
    label = f"{where} {kind}: {method} {response.request.url}"
    if response.status_code >= 500:
        raise AssertionError(f"{label} answered {response.status_code}")
    # 414/431: a URL or head too long for the web server, refused before the application.
    if where == "query" and response.status_code not in {400, 414, 431}:
        raise AssertionError(f"{label} answered {response.status_code}")
    if where == "body" and 200 <= response.status_code < 300 and method in {"POST", "PUT", "PATCH"}:
        raise AssertionError(f"{label} was accepted ({response.status_code})")
