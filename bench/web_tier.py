"""Web tier under load: gunicorn exactly as `make run` starts it (gthread, 2 workers ×
8 threads), on a free loopback port, loaded by wrk at concurrency 1, 8, 32 and 64.

Scenarios: (a) the bare authenticated GET /api/v1/organization (the baseline);
(b) a chat turn on /api/v1/sessions/{id}/messages; (c) POST /api/widget/chat;
(d) widget token + session + first message. (b)–(d) run against the offline answerer and
a 10,000-chunk knowledge base (see `bench/knowledge_base.py`); a scenario whose endpoint is
not in this build is reported as skipped with the reason.

Issue 14's check alone: `BENCH_WEB_SCENARIOS=a,b BENCH_WEB_CONCURRENCY=32 python bench/web_tier.py`
measures only (a) and (b) at c=32 against the same server and prints the chat turn's share of
the bare GET's throughput, its p95 and the load average (a narrowed run is partial: its result
file is not put in docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `python bench/<name>.py` as well as `-m`

from bench import common  # noqa: E402
from testkit import processes  # noqa: E402

CONCURRENCY = (1, 8, 32, 64)


def _chosen() -> tuple[set[str], tuple[int, ...]]:
    """BENCH_WEB_SCENARIOS=a,b and BENCH_WEB_CONCURRENCY=32 narrow a run (issue 14's check:
    the chat turn against the bare GET at c=32); a narrowed run is partial (not documented)."""
    letters = {part.strip() for part in os.environ.get("BENCH_WEB_SCENARIOS", "").split(",") if part.strip()}
    levels = tuple(
        int(part) for part in os.environ.get("BENCH_WEB_CONCURRENCY", "").split(",") if part.strip()
    )
    return letters or {"a", "b", "c", "d"}, levels or CONCURRENCY


def _cpu_seconds(root_pid: int | None) -> float:
    """CPU (user + system) of a process and its descendants so far, reaped ones included."""
    import psutil

    if root_pid is None:
        return 0.0
    try:
        root = psutil.Process(root_pid)
        times = root.cpu_times()
        total = times.user + times.system + times.children_user + times.children_system
        for child in root.children(recursive=True):
            try:
                child_times = child.cpu_times()
                total += child_times.user + child_times.system
            except psutil.NoSuchProcess:
                pass
        return total
    except psutil.NoSuchProcess:
        return 0.0


def _postgres_pid() -> int | None:
    """The embedded Postgres server this run's database lives in (None with DATABASE_URL)."""
    if os.environ.get("DATABASE_URL"):
        return None
    data = Path(os.environ.get("SUPPORTAI_DATA_DIR") or Path(__file__).resolve().parent.parent / ".data")
    try:
        return int((data / "pg" / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _measured_run(context: dict, **wrk_arguments) -> dict:
    """One wrk run plus the CPU it cost: the web server's processes, the database server's
    (its backends, live or exited) and wrk's own, per request. On a loaded shared host the
    throughput swings with the neighbours; CPU per request is what a quiet machine divides
    its cores by."""
    import resource

    server_pid, postgres_pid = context["server_pid"], context["postgres_pid"]
    before = (
        _cpu_seconds(server_pid),
        _cpu_seconds(postgres_pid),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    run = common.wrk_run(**wrk_arguments)
    after_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    web = _cpu_seconds(server_pid) - before[0]
    database = _cpu_seconds(postgres_pid) - before[1]
    load_generator = (after_children.ru_utime + after_children.ru_stime) - (
        before[2].ru_utime + before[2].ru_stime
    )
    requests_done = max(1, run["requests"])
    run["cpu_ms_per_request"] = {
        "web": round(web * 1000 / requests_done, 2),
        "postgres": round(database * 1000 / requests_done, 2),
        "wrk": round(load_generator * 1000 / requests_done, 2),
        "total": round((web + database + load_generator) * 1000 / requests_done, 2),
    }
    return run


def _scenario_bare_get(context: dict) -> dict:
    return {"path": "/api/v1/organization", "headers": context["headers"]}


def _scenario_chat_turn(context: dict) -> dict | str:
    from bench import knowledge_base

    prepared = knowledge_base.chat_ready(context)
    if isinstance(prepared, str):
        return prepared
    paths = [f"/api/v1/sessions/{session_id}/messages" for session_id in prepared["session_ids"]]
    # {n} makes every question unique, so the query embedding is really computed each turn.
    body = json.dumps({"content": "How do I reset my password? (ticket {n})"})
    return {"paths": paths, "method": "POST", "body": body, "headers": prepared["headers"]}


def _scenario_widget_chat(context: dict) -> dict | str:
    from bench import knowledge_base

    prepared = knowledge_base.chat_ready(context)
    if isinstance(prepared, str):
        return prepared
    bearer = {"Authorization": f"Bearer {prepared['key']['client_secret']}"}
    probe = requests.post(
        context["base_url"] + "/api/widget/chat",
        json={"message": "ping", "widgetId": prepared["widget_id"]},
        headers=bearer,
        timeout=60,
    )
    if probe.status_code != 200:
        return f"/api/widget/chat answered {probe.status_code}: {probe.text[:200]}"
    body = json.dumps(
        {
            "message": "What are your business hours? (ticket {n})",
            "widgetId": prepared["widget_id"],
            "sessionId": "bench-{n}",
        }
    )
    return {"path": "/api/widget/chat", "method": "POST", "body": body, "headers": bearer}


def _warm(base_url: str, spec: dict, *, parallel: int = 6) -> None:
    from concurrent.futures import ThreadPoolExecutor

    paths = spec.get("paths") or [spec["path"]]
    body = spec.get("body", "").replace("{n}", "warm")

    def one(index: int) -> int:
        return requests.request(
            spec.get("method", "GET"),
            base_url + paths[index % len(paths)],
            data=body.replace("warm", f"warm{index}").encode(),
            headers={**spec["headers"], "Content-Type": "application/json"},
            timeout=300,
        ).status_code

    with ThreadPoolExecutor(max_workers=parallel) as pool:
        list(pool.map(one, range(parallel)))


SCENARIOS = [
    ("a", "bare authenticated GET /api/v1/organization", _scenario_bare_get),
    ("b", "chat turn POST /api/v1/sessions/{id}/messages", _scenario_chat_turn),
    ("c", "POST /api/widget/chat", _scenario_widget_chat),
]


async def _widget_flow_run(context: dict, *, concurrency: int, duration: float) -> dict:
    """(d) one visitor's start: widget token → session → first message, per flow."""
    import httpx

    from bench import knowledge_base

    prepared = knowledge_base.chat_ready(context)
    base = context["base_url"]
    latencies: list[float] = []
    codes: dict[int, int] = {}
    deadline = time.monotonic() + duration

    socket_errors = 0

    async def visitor(client: httpx.AsyncClient) -> None:
        nonlocal socket_errors
        while time.monotonic() < deadline:
            try:
                await one_flow(client)
            except httpx.TransportError:  # a keep-alive connection closed under us: count, go on
                socket_errors += 1

    async def one_flow(client: httpx.AsyncClient) -> None:
        if True:
            started = time.perf_counter()
            token = await client.post(
                "/api/v1/auth/widget-token",
                json={"client_id": prepared["key"]["client_id"], "config_id": prepared["widget_id"]},
            )
            codes[token.status_code] = codes.get(token.status_code, 0) + 1
            if token.status_code != 200:
                return
            bearer = {"Authorization": f"Bearer {token.json()['token']}"}
            session = await client.post(
                "/api/v1/sessions", json={"assistant_id": prepared["assistant_id"]}, headers=bearer
            )
            codes[session.status_code] = codes.get(session.status_code, 0) + 1
            if session.status_code != 201:
                return
            message = await client.post(
                f"/api/v1/sessions/{session.json()['data']['id']}/messages",
                json={"content": f"How do I reset my password? (visitor {time.monotonic_ns()})"},
                headers=bearer,
            )
            codes[message.status_code] = codes.get(message.status_code, 0) + 1
            latencies.append(time.perf_counter() - started)

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, timeout=30, limits=limits) as client:
        started = time.monotonic()
        await asyncio.gather(*(visitor(client) for _ in range(concurrency)))
        elapsed = time.monotonic() - started
    latencies.sort()

    def pct(q: float) -> float:
        return (
            round(latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000, 1) if latencies else 0.0
        )

    return {
        "concurrency": concurrency,
        "requests": len(latencies),
        "rps": round(len(latencies) / elapsed, 1),
        "p50_ms": pct(0.50),
        "p95_ms": pct(0.95),
        "p99_ms": pct(0.99),
        "max_ms": round(latencies[-1] * 1000, 1) if latencies else 0.0,
        "codes": codes,
        "5xx": sum(count for code, count in codes.items() if code >= 500),
        "socket_errors": socket_errors,
        "server_timing_ms": {},
    }


def _widget_flow_available(context: dict) -> str | None:
    from bench import knowledge_base

    prepared = knowledge_base.chat_ready(context)
    if isinstance(prepared, str):
        return prepared
    probe = requests.post(
        context["base_url"] + "/api/v1/auth/widget-token",
        json={"client_id": prepared["key"]["client_id"], "config_id": prepared["widget_id"]},
        timeout=10,
    )
    if probe.status_code != 200:
        return f"POST /api/v1/auth/widget-token answered {probe.status_code}"
    return None


def _widget_flow_measure(context: dict, results: dict, *, concurrency, duration: float) -> None:
    title = "widget token + session + first message (one visitor start)"
    reason = _widget_flow_available(context)
    if reason:
        results["scenarios"]["d"] = {"title": title, "skipped": reason}
        print(f"(d) {title}: skipped — {reason}", flush=True)
    else:
        runs = []
        for level in concurrency:
            run = asyncio.run(_widget_flow_run(context, concurrency=level, duration=duration))
            runs.append(run)
            print(
                f"(d) c={level:>2}: {run['rps']} flows/s p50 {run['p50_ms']} p95 {run['p95_ms']}",
                flush=True,
            )
        results["scenarios"]["d"] = {"title": title, "runs": runs}


def main(*, duration: float | None = None, concurrency: tuple[int, ...] | None = None) -> dict:
    duration = duration or common.duration_seconds(8)
    letters, levels = _chosen()
    concurrency = concurrency or levels
    env = common.bench_env()
    common.database_ready(env)
    tenant = processes.tenant_provision(env=env, name="Bench web", rate_limit=common.UNLIMITED)
    key = tenant["keys"][0]
    log = common.log_path("web_tier")
    server, base_url = processes.gunicorn_start(env=env, log_path=log)
    context = {
        "env": env,
        "base_url": base_url,
        "tenant": tenant,
        "key": key,
        "headers": common.auth_headers(key),
        "server_pid": server.pid,
        "postgres_pid": _postgres_pid(),
    }
    results: dict = {"duration_s": duration, "scenarios": {}}
    try:
        for letter, title, prepare in SCENARIOS:
            if letter not in letters:
                continue
            spec = prepare(context)
            if isinstance(spec, str):
                results["scenarios"][letter] = {"title": title, "skipped": spec}
                print(f"({letter}) {title}: skipped — {spec}", flush=True)
                continue
            # Warm up before measuring: every web worker loads the embedder (and litellm)
            # lazily on its first chat turn, which takes seconds; then connections and caches.
            if letter != "a":
                _warm(base_url, spec)
            common.wrk_run(
                url=base_url + spec.get("path", "/"),
                concurrency=8,
                duration=2,
                headers=spec["headers"],
                method=spec.get("method", "GET"),
                body=spec.get("body", ""),
                paths=spec.get("paths"),
            )
            runs = []
            for level in concurrency:
                run = _measured_run(
                    context,
                    url=base_url + spec.get("path", "/"),
                    concurrency=level,
                    duration=duration,
                    headers=spec["headers"],
                    method=spec.get("method", "GET"),
                    body=spec.get("body", ""),
                    paths=spec.get("paths"),
                )
                runs.append(run)
                print(
                    f"({letter}) c={level:>2}: {run['rps']:>7} req/s  p50 {run['p50_ms']:.1f}  "
                    f"p95 {run['p95_ms']:.1f}  p99 {run['p99_ms']:.1f} ms  5xx {run['5xx']}  "
                    f"codes {run['codes']}  timing {common.timing_text(run['server_timing_ms'])}  "
                    f"cpu/request {common.timing_text(run['cpu_ms_per_request'])}",
                    flush=True,
                )
            results["scenarios"][letter] = {"title": title, "runs": runs}

        if "d" in letters:
            _widget_flow_measure(context, results, concurrency=concurrency, duration=duration)
    finally:
        processes.process_stop(server)
    results["summary"] = _summary(results["scenarios"])
    results["load_average"] = [round(value, 1) for value in os.getloadavg()]
    for level, ratio in results["summary"].get("chat_over_bare_rps", {}).items():
        chat_run = next(run for run in results["scenarios"]["b"]["runs"] if run["concurrency"] == level)
        print(
            f"c={level}: chat turn / bare GET throughput = {ratio} (1/{round(1 / ratio, 1) if ratio else '∞'}), "
            f"chat p95 {chat_run['p95_ms']:.0f} ms; goal ≥ 1/6 with p95 < 1000 ms at c=32; "
            f"by CPU per request (web + Postgres + wrk) the share is "
            f"{results['summary']['bare_over_chat_cpu'].get(level)}; load average {results['load_average']}",
            flush=True,
        )
    if letters != {"a", "b", "c", "d"} or tuple(concurrency) != CONCURRENCY:
        results["partial"] = (
            f"scenarios {','.join(sorted(letters))} at c={','.join(map(str, concurrency))} only"
        )
    return results


def _summary(scenarios: dict) -> dict:
    summary: dict = {}
    bare = {run["concurrency"]: run for run in scenarios.get("a", {}).get("runs", [])}
    chat = {run["concurrency"]: run for run in scenarios.get("b", {}).get("runs", [])}
    if 32 in bare:
        summary["bare_get_p95_ms_c32"] = bare[32]["p95_ms"]
        summary["bare_get_rps_c32"] = bare[32]["rps"]
    if chat and bare:
        ratios = {}
        for level in chat:
            if level in bare and bare[level]["p50_ms"]:
                ratios[level] = round(chat[level]["p50_ms"] / bare[level]["p50_ms"], 2)
        summary["chat_over_bare_p50"] = ratios
        summary["chat_over_bare_rps"] = {
            level: round(chat[level]["rps"] / bare[level]["rps"], 3)
            for level in chat
            if level in bare and bare[level]["rps"]
        }
        # The same ratio as a CPU-bound quiet machine would see it: CPU per bare GET over CPU
        # per chat turn (web server + Postgres + wrk), which the neighbours' load moves less.
        summary["bare_over_chat_cpu"] = {
            level: round(
                bare[level]["cpu_ms_per_request"]["total"] / chat[level]["cpu_ms_per_request"]["total"], 3
            )
            for level in chat
            if level in bare and chat[level].get("cpu_ms_per_request", {}).get("total")
        }
        one = chat.get(1)
        if one and 1 in bare:
            phases = one["server_timing_ms"]
            embed_retrieve = phases.get("embed", 0) + phases.get("retrieve", 0)
            summary["chat_turn_c1_ms"] = one["p50_ms"]
            summary["chat_turn_budget_ms"] = round(embed_retrieve + 2 * bare[1]["p50_ms"], 1)
            summary["chat_turn_split_c1_ms"] = phases
    summary["total_5xx"] = sum(
        run["5xx"] for scenario in scenarios.values() for run in scenario.get("runs", [])
    )
    return summary


def report(results: dict) -> str:
    lines = [f"Each run: wrk for {results['duration_s']:.0f} s after a 2 s warm-up; latencies in ms."]
    for letter, scenario in results["scenarios"].items():
        lines.append(f"\n**({letter}) {scenario['title']}**\n")
        if "skipped" in scenario:
            lines.append(f"Skipped: {scenario['skipped']}.")
            continue
        rows = [
            {
                **run,
                "server timing (mean ms)": common.timing_text(run["server_timing_ms"]),
                "cpu ms per request": common.timing_text(run.get("cpu_ms_per_request", {})),
                "codes": ", ".join(f"{code}×{count}" for code, count in sorted(run["codes"].items())),
            }
            for run in scenario["runs"]
        ]
        lines.append(
            common.table(
                rows,
                [
                    "concurrency",
                    "rps",
                    "p50_ms",
                    "p95_ms",
                    "p99_ms",
                    "5xx",
                    "codes",
                    "server timing (mean ms)",
                    "cpu ms per request",
                ],
            )
        )
    summary = results.get("summary", {})
    if summary:
        lines.append("\nSummary: " + json.dumps(summary))
    return "\n".join(lines)


if __name__ == "__main__":
    from bench import results

    sys.exit(results.standalone(sys.modules[__name__]))
