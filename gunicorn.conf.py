# Read by gunicorn from the working directory (make run, the Dockerfile, the bench and the
# chaos tests all start it from the repository root).
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


def post_worker_init(worker):
    """Load the embedder (and litellm) in the background so no visitor waits for it.

    gunicorn calls this in every worker it starts, including the replacements of
    recycled workers, so each new worker warms up the same way.
    """
    from chat.warmup import engine_warm_in_background

    worker.log.info("Worker %s: engine warm-up started", worker.pid)
    engine_warm_in_background()
