# Read by gunicorn from the working directory (make run, the Dockerfile, docker-compose.yml,
# the bench and the chaos tests all start it from the repository root): the one place for
# the web tier's settings. Those commands give only `--bind` (and the bench its own sizes).
import os

logger_class = "supportai.gunicorn_logging.RedactingLogger"


def _whole_number(name: str, default: int) -> int:
    given = os.environ.get(name, "")
    raw = given.strip().replace("_", "") or str(default)
    if not raw.isdigit():
        raise ValueError(f"{name} must be a whole number, 0 or more (0 disables), got {given!r}.")
    return int(raw)


# Recycle each worker after about this many requests, so a slow memory growth (RSS grew
# 5-7 % over a 10-minute chat load) stays bounded. The jitter (a random 0..N extra per
# worker) keeps the workers from restarting all at once; the arbiter holds the listening
# socket, so requests queue during a restart instead of failing. 0 disables recycling.
max_requests = _whole_number("GUNICORN_MAX_REQUESTS", 5000)
max_requests_jitter = _whole_number("GUNICORN_MAX_REQUESTS_JITTER", 500) if max_requests else 0

# gthread, with each request head (and a small body) read in the worker's event loop before a
# thread takes it, so slow or idle clients cost a buffer, not a thread (issue 13, Slowloris),
# and a separate pool of WEB_STREAM_THREADS (default 256) threads for live event streams, so
# open widget panels never take a thread from ordinary requests. See
# supportai/gunicorn_worker.py for why this and not a proxy or an async worker.
worker_class = "supportai.gunicorn_worker.BufferedThreadWorker"
workers = _whole_number("WEB_CONCURRENCY", 2) or 1
threads = _whole_number("WEB_THREADS", 8) or 1
# Connections one worker holds at once: requests being read, kept alive, streams and slow or
# idle clients. Each costs a file descriptor and a small buffer.
worker_connections = 4000
keepalive = 5
timeout = 120
graceful_timeout = 10
accesslog = "-"
# No control socket: gunicorn 25+ opens one for `gunicornc` at $XDG_RUNTIME_DIR/gunicorn.ctl or
# ~/.gunicorn/gunicorn.ctl, one path per user, so every checkout's `make run` on a host (and
# the tests' and bench's servers) took it from the one before, and whichever stopped first
# deleted the others'. Nothing here uses gunicornc; signals (HUP, TERM, TTIN/TTOU) still work.
control_socket_disable = True


def post_worker_init(worker):
    """Load the embedder (and litellm) in the background so no visitor waits for it.

    gunicorn calls this in every worker it starts, including the replacements of
    recycled workers, so each new worker warms up the same way.
    """
    from chat.warmup import engine_warm_in_background

    worker.log.info("Worker %s: engine warm-up started", worker.pid)
    engine_warm_in_background()


def on_starting(server):
    """Start the process's dependencies once, in the master, before any worker imports
    supportai.wsgi (which calls the same idempotent `process_start` for other servers)."""
    from supportai.startup import process_start

    process_start()
