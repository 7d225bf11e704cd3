"""Webhook delivery through a real Celery worker (prefork, concurrency 2, queue `default`) to
a loopback receiver that answers 200 at once: events emitted with `event_emit` in this
process (each commit enqueues its delivery), signed and POSTed by the worker through the
SSRF-checked fetcher. Latency = the receiver's arrival time minus the event's `created_at`,
one event at a time (the next is emitted when the previous one arrived, so no queue);
throughput = a burst of events of distinct conversations committed at once (delivered in
parallel), and of one conversation (strictly in order, each after the one before)."""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# First, always: run as a script, this file's own folder would shadow the `webhooks` app.
sys.path.insert(0, str(ROOT))

LATENCY_EVENTS = int(os.environ.get("BENCH_WEBHOOK_LATENCY_EVENTS", "100"))
BURST_EVENTS = int(os.environ.get("BENCH_WEBHOOK_BURST_EVENTS", "1000"))
ORDERED_EVENTS = int(os.environ.get("BENCH_WEBHOOK_ORDERED_EVENTS", "200"))


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def main() -> dict:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "supportai.settings")
    from testkit import processes
    from testkit.webhook_receiver import WebhookReceiver

    receiver = WebhookReceiver()
    os.environ["SCRAPE_ALLOWLIST"] = receiver.netloc
    import django

    from supportai.startup import process_start

    process_start()  # the embedded Postgres, as every process starts

    django.setup()
    from django.core.management import call_command
    from django.db import transaction

    from organizations.services import event_emit, organization_create
    from webhooks import services

    call_command("migrate", "--noinput", verbosity=0)
    load_before = os.getloadavg()[0]
    stamp = uuid.uuid4().hex[:8]
    organization = organization_create(
        name=f"Webhook bench {stamp}",
        owner_email=f"bench-{stamp}@bench.example",
        owner_password="bench-pass-123",
    )
    services.endpoint_create(
        organization=organization, url=receiver.url("/bench"), events=["message.created"]
    )
    log_dir = Path(tempfile.mkdtemp(prefix="bench-webhooks-"))
    env = processes.base_env(SCRAPE_ALLOWLIST=receiver.netloc, LOG_LEVEL="WARNING")
    worker = processes.celery_worker_start(
        env=env, queues="default", concurrency=2, log_path=log_dir / "worker.log", extra=["--pool", "prefork"]
    )
    try:
        processes.celery_worker_wait_ready(log_dir / "worker.log", timeout=120)

        def emit(conversation: str) -> float:
            event = event_emit(
                organization=organization, type="message.created", data={"conversation_id": conversation}
            )
            return event.created_at.timestamp()

        # Warm-up: the pool's first tasks import and connect.
        for number in range(5):
            emit(f"warm-{number}")
        receiver.wait_for(5, timeout=120)

        # Latency: one event at a time, the next emitted once the previous one arrived (no queue).
        receiver.received.clear()
        latencies_ms = []
        for number in range(LATENCY_EVENTS):
            created = emit(f"latency-{stamp}-{number}")
            request = receiver.wait_for(number + 1, timeout=120)[number]
            latencies_ms.append((request.at - created) * 1000)

        # Throughput, distinct conversations: one transaction of BURST_EVENTS events.
        receiver.received.clear()
        started = time.time()
        with transaction.atomic():
            for number in range(BURST_EVENTS):
                emit(f"burst-{stamp}-{number}")
        committed = time.time()
        arrived = receiver.wait_for(BURST_EVENTS, timeout=600)
        burst_seconds = arrived[-1].at - committed

        # Throughput, one conversation: strictly in order, each waits for the one before.
        receiver.received.clear()
        with transaction.atomic():
            for _ in range(ORDERED_EVENTS):
                emit(f"ordered-{stamp}")
        ordered_committed = time.time()
        arrived = receiver.wait_for(ORDERED_EVENTS, timeout=600)
        ordered_seconds = arrived[-1].at - ordered_committed
        in_order = [request.json()["id"] for request in arrived]
        from organizations.models import Event

        expected = [
            str(pk)
            for pk in Event.objects.for_organization(organization)
            .filter(data__conversation_id=f"ordered-{stamp}")
            .order_by("created_at")
            .values_list("pk", flat=True)
        ]
        duplicates = len(receiver.received) - len({request.delivery_id for request in receiver.received})
    finally:
        processes.process_stop(worker)
        receiver.close()
    return {
        "worker": "prefork, concurrency 2",
        "load_average": f"{load_before:.1f} → {os.getloadavg()[0]:.1f}",
        "latency_events": LATENCY_EVENTS,
        "latency_p50_ms": round(statistics.median(latencies_ms), 1),
        "latency_p95_ms": round(_percentile(latencies_ms, 0.95), 1),
        "latency_max_ms": round(max(latencies_ms), 1),
        "burst_events": BURST_EVENTS,
        "burst_emit_seconds": round(committed - started, 2),
        "burst_deliveries_per_second": round(BURST_EVENTS / burst_seconds, 1),
        "ordered_events": ORDERED_EVENTS,
        "ordered_deliveries_per_second": round(ORDERED_EVENTS / ordered_seconds, 1),
        "ordered_arrived_in_order": in_order == expected,
        "duplicate_deliveries": duplicates,
    }


def report(result: dict) -> str:
    return "\n".join(
        [
            "| measure | value |",
            "|---|---|",
            f"| worker | {result['worker']} |",
            f"| machine load average (1 min) at start → end, 2 cores | {result.get('load_average', '?')} |",
            f"| event → delivery p50 / p95 / max ({result['latency_events']} events, one at a time, no queue) "
            f"| {result['latency_p50_ms']} / {result['latency_p95_ms']} / {result['latency_max_ms']} ms |",
            f"| throughput, {result['burst_events']} events of distinct conversations committed at once "
            f"| {result['burst_deliveries_per_second']} deliveries/s (emitting them took "
            f"{result['burst_emit_seconds']} s) |",
            f"| throughput, {result['ordered_events']} events of one conversation (in order, one at a time) "
            f"| {result['ordered_deliveries_per_second']} deliveries/s; arrived in order: "
            f"{result['ordered_arrived_in_order']} |",
            f"| duplicate deliveries | {result['duplicate_deliveries']} |",
        ]
    )


if __name__ == "__main__":
    from bench import results

    sys.exit(results.standalone(sys.modules[__name__]))
