"""What one chat turn costs in CPU and statements, measured in-process so the load of a shared
machine moves it far less than wall-clock throughput (issue 14).

N chat turns (default 100, `BENCH_TURNS`) through Django's test client — the full middleware
and DRF stack, API-key authenticated, no HTTP socket, no wrk — on `/api/v1/sessions/{id}/messages`
against the bench knowledge base (`bench/knowledge_base.py`: 10,000 chunks, the offline
answerer), a unique question per turn so every query embedding is really computed. The same
for the bare authenticated GET `/api/v1/organization`, the web-tier bench's baseline.

Reported per request: this process's CPU (user + system from `/proc/self/stat`: Django, DRF,
the embedder's forward pass and any threads it runs) and its Postgres backend's CPU (the
backend serving this process's connection, `pg_backend_pid()`, from `/proc/<pid>/stat`), and
the statements Django sent. `python bench/turn_cost.py --sample` prints where the turns' CPU
goes (a SIGPROF sampler on the process CPU clock: low overhead, the shares are the real ones);
`--profile` a cProfile with a thread-CPU clock (exact call counts, but its per-call overhead
inflates Python-heavy code several times); `--statements` one turn's statements. Those runs
only print; without options the run is a measurement and writes its result file.

`--threads N` (or `BENCH_TURN_THREADS`) sends the turns from N threads at once, each with its
own client and database connection, as a gunicorn worker's N threads serve them (the web-tier
bench runs 8 per worker): the process's CPU per turn then includes what concurrency changes —
the embedder's queue (`EncodeQueue`) encoding the texts of turns that wait for it together, the
GIL's hand-offs — and Postgres's is summed over the N backends. `passes` is the embedder's
forward passes per request (`session.run` calls), `texts` the texts they encoded.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `python bench/<name>.py` as well as `-m`

TURNS = int(os.environ.get("BENCH_TURNS", 100))
THREADS = int(os.environ.get("BENCH_TURN_THREADS", 1))
WARM_TURNS = 10
QUESTION = "How do I reset my password? (ticket {n})"


def _cpu_ms(pid: int | str) -> float:
    """User + system CPU of a process so far, in milliseconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000.0 / os.sysconf("SC_CLK_TCK")


def _backend_pid() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


@contextmanager
def _passes_counted(counts: dict):
    """Counts the local embedder's forward passes and the texts they encode while it is open."""
    from knowledge import embeddings

    encode = embeddings.LocalEmbedder.__dict__["_encode"]

    def counted(model, texts):
        counts["passes"] += -(-len(texts) // embeddings.LOCAL_BATCH_SIZE)
        counts["texts"] += len(texts)
        return encode.__func__(model, texts)

    embeddings.LocalEmbedder._encode = staticmethod(counted)
    try:
        yield
    finally:
        embeddings.LocalEmbedder._encode = encode


def _row(label, requests, *, python_ms, postgres_ms, statements, counts, wall, load) -> dict:
    return {
        "request": label,
        "requests": requests,
        "python_cpu_ms": round(python_ms, 1),
        "postgres_cpu_ms": round(postgres_ms, 1),
        "total_cpu_ms": round(python_ms + postgres_ms, 1),
        "statements": round(statements / requests, 2),
        "passes": round(counts["passes"] / requests, 2),
        "texts": round(counts["texts"] / requests, 2),
        "wall_ms": round(wall * 1000 / requests, 1),
        "load": round(load, 1),
    }


def _measure(label: str, requests: int, send) -> dict:
    """Runs `send(n)` `requests` times; CPU of both sides and statements per request.

    Statements are counted by an execute wrapper, not Django's CaptureQueriesContext: that
    forces the debug cursor, which formats every statement with its parameters and would be
    counted as the turn's own CPU."""
    from django.db import connection

    statements = 0

    def count(execute, sql, params, many, context):
        nonlocal statements
        statements += 1
        return execute(sql, params, many, context)

    backend = _backend_pid()
    load = os.getloadavg()[0]
    counts = {"passes": 0, "texts": 0}
    python_before, postgres_before = _cpu_ms("self"), _cpu_ms(backend)
    started = time.monotonic()
    with connection.execute_wrapper(count), _passes_counted(counts):
        for n in range(requests):
            send(n)
    wall = time.monotonic() - started
    python_ms = (_cpu_ms("self") - python_before) / requests
    postgres_ms = (_cpu_ms(backend) - postgres_before) / requests
    if _backend_pid() != backend:
        raise RuntimeError("the database connection was replaced during the run: its CPU is lost")
    return _row(
        label,
        requests,
        python_ms=python_ms,
        postgres_ms=postgres_ms,
        statements=statements,
        counts=counts,
        wall=wall,
        load=load,
    )


def _measure_threads(label: str, requests: int, threads: int, send) -> dict:
    """`send(n)` for n in range(requests) from `threads` threads at once (each its own database
    connection, opened and warmed before the clock starts); CPU of this process and of every
    thread's Postgres backend."""
    import threading

    from django.db import connection

    statements = 0
    lock = threading.Lock()

    def count(execute, sql, params, many, context):
        nonlocal statements
        with lock:
            statements += 1
        return execute(sql, params, many, context)

    backends: list[int] = []
    ready, done = threading.Barrier(threads + 1), threading.Barrier(threads + 1)
    start, measured = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def worker(index: int) -> None:
        try:
            send(-1_000_000 - index)  # this thread's connection and client warm
            backends.append(_backend_pid())
        except Exception as error:  # reported once every thread has finished
            errors.append(error)
        ready.wait()
        start.wait()
        try:
            if not errors:
                with connection.execute_wrapper(count):
                    for n in range(index, requests, threads):
                        send(n)
        except Exception as error:
            errors.append(error)
        finally:
            done.wait()
            measured.wait()  # the backend's CPU is read before its connection closes
            connection.close()

    workers = [threading.Thread(target=worker, args=(index,)) for index in range(threads)]
    for thread in workers:
        thread.start()
    ready.wait()
    load = os.getloadavg()[0]
    counts = {"passes": 0, "texts": 0}
    try:
        with _passes_counted(counts):
            python_before = _cpu_ms("self")
            postgres_before = sum(_cpu_ms(backend) for backend in backends)
            started = time.monotonic()
            start.set()
            done.wait()
            wall = time.monotonic() - started
            python_ms = (_cpu_ms("self") - python_before) / requests
            postgres_ms = (sum(_cpu_ms(backend) for backend in backends) - postgres_before) / requests
    except BaseException:
        done.abort()  # no thread waits for a measurement that failed
        raise
    finally:
        start.set()
        measured.set()
        for thread in workers:
            thread.join()
    if errors:
        raise errors[0]
    return _row(
        f"{label} ({threads} threads)",
        requests,
        python_ms=python_ms,
        postgres_ms=postgres_ms,
        statements=statements,
        counts=counts,
        wall=wall,
        load=load,
    )


def _clients(kb: dict, *, sessions: int = 8):
    from django.test import Client

    headers = {
        "HTTP_HOST": "localhost",
        "HTTP_X_API_KEY": kb["client_id"],
        "HTTP_X_API_SECRET": kb["client_secret"],
    }
    client = Client(**headers)
    session_ids = []
    for index in range(sessions):
        response = client.post(
            "/api/v1/sessions",
            {"assistant_id": kb["assistant_id"], "visitor_id": f"turn-cost-{index}"},
            content_type="application/json",
        )
        if response.status_code != 201:
            raise RuntimeError(f"session create answered {response.status_code}: {response.content[:200]}")
        session_ids.append(response.json()["data"]["id"])
    return client, session_ids


def main(
    *,
    turns: int = TURNS,
    threads: int | None = None,
    profile: bool = False,
    sample: bool = False,
    show_statements: bool = False,
) -> dict:
    os.environ.setdefault("LOG_LEVEL", "WARNING")  # as the web-tier bench runs gunicorn
    from bench import knowledge_base

    threads = THREADS if threads is None else threads

    kb = knowledge_base.knowledge_base_ensure()
    client, session_ids = _clients(kb)
    tag = int(time.time())

    def turn(n: int, client=client) -> None:
        response = client.post(
            f"/api/v1/sessions/{session_ids[n % len(session_ids)]}/messages",
            {"content": QUESTION.format(n=f"{tag}-{n}")},
            content_type="application/json",
        )
        if response.status_code != 201:
            raise RuntimeError(f"chat turn answered {response.status_code}: {response.content[:300]}")

    def bare(n: int) -> None:
        response = client.get("/api/v1/organization")
        if response.status_code != 200:
            raise RuntimeError(f"GET /api/v1/organization answered {response.status_code}")

    for n in range(WARM_TURNS):  # the embedder loads, connections and caches warm
        turn(-1 - n)
        bare(n)
    if show_statements:
        _statements_print(lambda: turn(10**6))
    rows = [_measure("bare GET /api/v1/organization", turns * 4, bare)]
    if profile:
        rows.append(_profiled(lambda: _measure("chat turn (profiled)", turns, turn)))
    elif sample:
        rows.append(_sampled(lambda: _measure("chat turn (sampled)", turns, turn)))
    elif threads > 1:
        local = threading.local()

        def threaded_turn(n: int) -> None:
            if not hasattr(local, "client"):  # Django's test client is one per thread
                local.client = _clients(kb, sessions=0)[0]
            turn(n, client=local.client)

        rows.append(_measure_threads("chat turn", turns, threads, threaded_turn))
    else:
        rows.append(_measure("chat turn", turns, turn))
    bare_row, turn_row = rows
    return {
        "turns": turns,
        "chunks": kb["chunks"],
        "rows": rows,
        "turn_over_bare_cpu": round(turn_row["total_cpu_ms"] / bare_row["total_cpu_ms"], 1),
    }


def _statements_print(send) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        send()
    for number, query in enumerate(captured.captured_queries, start=1):
        print(f"{number:>2}. {query['time']}s {query['sql'][:220]}")


def _profiled(run):
    import cProfile
    import pstats

    profiler = cProfile.Profile(time.thread_time)
    profiler.enable()
    try:
        result = run()
    finally:
        profiler.disable()
    stats = pstats.Stats(profiler)
    stats.sort_stats("cumulative").print_stats(45)
    stats.sort_stats("tottime").print_stats(30)
    return result


def _project(filename: str, root: str) -> bool:
    return filename.startswith(root) and "/.venv/" not in filename and "/bench/" not in filename


def _sampled(run, *, interval: float = 0.0005):
    """A statistical profile on the process's CPU clock: SIGPROF fires every `interval` s of
    CPU and the handler records the main thread's stack (cProfile's per-call overhead
    inflates Python-heavy code several times; sampling does not)."""
    import signal
    from collections import Counter

    inclusive: Counter[str] = Counter()
    exclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()  # the innermost project function (libraries it calls included)
    samples = 0

    root = str(Path(__file__).resolve().parent.parent) + "/"
    names: dict = {}
    busy = False

    def where(code) -> str:
        name = names.get(code)
        if name is None:
            short = code.co_filename.replace(root, "").split("site-packages/")[-1]
            name = names[code] = f"{short}:{code.co_name}"
        return name

    def handler(signum, frame):
        nonlocal samples, busy
        if busy:  # a signal while recording the last one
            return
        busy = True
        samples += 1
        exclusive[where(frame.f_code)] += 1
        innermost = None
        seen = set()
        while frame is not None:
            name = where(frame.f_code)
            if name not in seen:
                seen.add(name)
                inclusive[name] += 1
            if innermost is None and _project(frame.f_code.co_filename, root):
                innermost = name
            frame = frame.f_back
        own[innermost or "(outside project code)"] += 1
        busy = False

    previous = signal.signal(signal.SIGPROF, handler)
    signal.setitimer(signal.ITIMER_PROF, interval, interval)
    try:
        result = run()
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0, 0)
        signal.signal(signal.SIGPROF, previous)
    print(f"{samples} samples; inclusive share of the turn's CPU (project and hot library code):")
    for name, count in inclusive.most_common(70):
        print(f"  {100 * count / samples:5.1f} %  {name}")
    print("by the innermost project function on the stack (what it calls included):")
    for name, count in own.most_common(40):
        print(f"  {100 * count / samples:5.1f} %  {name}")
    print("exclusive (where the CPU was when sampled):")
    for name, count in exclusive.most_common(30):
        print(f"  {100 * count / samples:5.1f} %  {name}")
    return result


TITLE = "Chat turn cost: CPU and statements per turn"
COLUMNS = [
    "request",
    "requests",
    "python_cpu_ms",
    "postgres_cpu_ms",
    "total_cpu_ms",
    "statements",
    "passes",
    "texts",
    "wall_ms",
    "load",
]


def tables(figures: dict) -> list[dict]:
    from bench import results

    return [
        results.table(
            title=f"In-process requests against a {figures['chunks']:,}-chunk knowledge base",
            columns=COLUMNS,
            rows=[[row[column] for column in COLUMNS] for row in figures["rows"]],
            note="CPU per request of this process and of its Postgres backend (from /proc); "
            "statements as Django sent them (transaction BEGIN/COMMIT are not statements here); load = 1-minute load "
            "average when the run started.",
        )
    ]


def report(figures: dict) -> str:
    return f"A chat turn costs {figures['turn_over_bare_cpu']}× a bare GET's CPU (Python + Postgres)."


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", action="store_true", help="cProfile the turns (thread-CPU clock)")
    parser.add_argument("--sample", action="store_true", help="sample the turns' stacks on the CPU clock")
    parser.add_argument("--statements", action="store_true", help="print one turn's statements")
    parser.add_argument("--threads", type=int, default=THREADS, help="send the turns from N threads at once")
    arguments = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)
    if arguments.profile or arguments.sample or arguments.statements:  # a look, not a measurement
        figures = main(
            threads=arguments.threads,
            profile=arguments.profile,
            sample=arguments.sample,
            show_statements=arguments.statements,
        )
        print("\n".join(" | ".join(str(row[column]) for column in COLUMNS) for row in figures["rows"]))
        print(report(figures))
    else:
        from bench import results

        THREADS = arguments.threads  # main()'s default when the result module calls it
        sys.exit(results.standalone(sys.modules[__name__]))
