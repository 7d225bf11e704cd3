# Read by gunicorn from the working directory (make run, the Dockerfile, the bench and the
# chaos tests all start it from the repository root).
logger_class = "supportai.gunicorn_logging.RedactingLogger"


def post_worker_init(worker):
    """Load the embedder (and litellm) in the background so no visitor waits for it."""
    from chat.warmup import engine_warm_in_background

    engine_warm_in_background()
