"""The support desk's inbox at shop scale: the first page of the conversation list with
N conversations in one organization (default 50,000, `BENCH_INBOX_CONVERSATIONS`).

Seeds, once, an organization of N conversations (`testkit.inbox.conversations_insert`, in SQL:
about 4 N messages, 80 % sessions, some waiting, taken over or resolved). Other organizations'
rows in the same database stay. Then, through Django's test client (the full middleware and
view stack, no HTTP socket), each of: the dashboard inbox's first page (All, the Waiting tab,
"Assigned to me", Status = Taken over / Resolved, page 50 of All, the Unanswered and Feedback
filters, searches for words most messages have, an order number, an email and a word no message
has), the API's `GET /api/v1/conversations` and `GET /api/v1/sessions` first pages,
`BENCH_INBOX_REPEATS` times (default 20) after two warm-up requests. Reported per request: the median wall time, and the CPU of this process and of its
Postgres backend (`/proc`, as `bench/turn_cost.py`), which a shared machine moves far less.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `python bench/inbox.py` as well as `-m`

TITLE = "Support desk inbox at shop scale"
CONVERSATIONS = int(os.environ.get("BENCH_INBOX_CONVERSATIONS", 50_000))
REPEATS = int(os.environ.get("BENCH_INBOX_REPEATS", 20))
SLUG = "bench-inbox"
OPERATOR_EMAIL = "bench-inbox-operator@example.com"
COLUMNS = ["request", "median ms", "process CPU ms", "Postgres CPU ms"]

CASES = [
    ("inbox: All", "/inbox/"),
    ("inbox: Waiting tab", "/inbox/?status=waiting"),
    ("inbox: Assigned to me", "/inbox/?mine=on"),
    ("inbox: Taken over", "/inbox/?status=human"),
    ("inbox: Resolved", "/inbox/?status=resolved"),
    ("inbox: All, page 50", "/inbox/?page=50"),
    ("inbox: Unanswered", "/inbox/?unanswered=on"),
    ("inbox: Feedback = rated", "/inbox/?feedback=any"),
    ("inbox: Feedback = helpful", "/inbox/?feedback=up"),
    ("inbox: Feedback = not helpful", "/inbox/?feedback=down"),
    ("inbox: Search (message text)", "/inbox/?q=ships+within"),
    ("inbox: Search (order number)", "/inbox/?q=A-31337"),
    ("inbox: Search (email)", "/inbox/?q=customer-4242%40example.com"),
    ("inbox: Search (no match)", "/inbox/?q=refund"),
    ("API: GET /api/v1/conversations", "/api/v1/conversations"),
    ("API: GET /api/v1/sessions", "/api/v1/sessions"),
]


def seed(count: int = CONVERSATIONS) -> dict:
    """The bench organization with `count` conversations (built once per count, then reused)."""
    from bench import knowledge_base

    knowledge_base._django()
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction

    from assistants.models import Assistant
    from assistants.services import assistant_create
    from chat.models import Conversation, Message
    from organizations.models import Membership, Organization
    from organizations.services import api_key_create, membership_create, organization_create
    from testkit.inbox import conversations_insert

    organization = Organization.objects.filter(slug=SLUG).first()
    if organization is None:
        organization = organization_create(name="Bench inbox", slug=SLUG, rate_limit_per_hour=10**9)
    operator = get_user_model().objects.filter(email=OPERATOR_EMAIL).first()
    if operator is None:
        operator = get_user_model().objects.create_user(
            username=OPERATOR_EMAIL, email=OPERATOR_EMAIL, password=None
        )
    if not Membership.objects.for_organization(organization).filter(user=operator).exists():
        membership_create(organization=organization, user=operator, role=Membership.Role.OWNER)
    assistant = Assistant.objects.for_organization(organization).first() or assistant_create(
        organization=organization, name="Bench assistant"
    )
    have = Conversation.objects.for_organization(organization).count()
    # A seed from before the first questions named an order and an email has nothing for
    # the order-number and email searches to find: seed again.
    current = (
        Message.objects.for_organization(organization)
        .filter(seq=1, role=Message.Role.USER, content__startswith="Hi, this is customer-")
        .exists()
    )
    if have != count or (count and not current):
        started = time.monotonic()
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("DELETE FROM chat_message WHERE organization_id = %s", [organization.pk])
            cursor.execute("DELETE FROM chat_conversation WHERE organization_id = %s", [organization.pk])
            conversations_insert(
                cursor, organization=organization, assistant=assistant, operator=operator, count=count
            )
        print(f"seeded {count} conversations in {time.monotonic() - started:.1f} s", flush=True)
    _key, secret = api_key_create(organization=organization, name="bench inbox")
    return {"organization": organization, "operator": operator, "api_key": _key, "api_secret": secret}


def _measure(client, url: str, repeats: int) -> dict:
    from bench.turn_cost import _backend_pid, _cpu_ms

    for _ in range(2):  # connections, caches, prepared statements warm
        response = client.get(url)
        if response.status_code != 200:
            raise RuntimeError(f"GET {url} answered {response.status_code}: {response.content[:300]}")
    backend = _backend_pid()
    walls = []
    process_cpu, postgres_cpu = _cpu_ms("self"), _cpu_ms(backend)
    for _ in range(repeats):
        started = time.perf_counter()
        response = client.get(url)
        walls.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise RuntimeError(f"GET {url} answered {response.status_code}")
    return {
        "median_ms": round(statistics.median(walls), 1),
        "process_cpu_ms": round((_cpu_ms("self") - process_cpu) / repeats, 1),
        "postgres_cpu_ms": round((_cpu_ms(backend) - postgres_cpu) / repeats, 1),
    }


def main(*, count: int = CONVERSATIONS, repeats: int = REPEATS) -> dict:
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    fixture = seed(count)
    from django.test import Client

    dashboard = Client(HTTP_HOST="localhost")
    dashboard.force_login(fixture["operator"])
    api = Client(
        HTTP_HOST="localhost",
        HTTP_X_API_KEY=fixture["api_key"].client_id,
        HTTP_X_API_SECRET=fixture["api_secret"],
    )
    rows = []
    for label, url in CASES:
        client = api if url.startswith("/api/") else dashboard
        rows.append({"request": label, **_measure(client, url, repeats)})
        print(rows[-1], flush=True)
    return {"conversations": count, "repeats": repeats, "rows": rows}


def tables(figures: dict) -> list[dict]:
    from bench import results

    return [
        results.table(
            title=f"First page with {figures['conversations']:,} conversations in one organization",
            columns=COLUMNS,
            rows=[
                [row["request"], row["median_ms"], row["process_cpu_ms"], row["postgres_cpu_ms"]]
                for row in figures["rows"]
            ],
            note=f"per request, {figures['repeats']} requests each after two warm-up requests",
        )
    ]


if __name__ == "__main__":
    from bench import results

    sys.exit(results.standalone(sys.modules[__name__]))
