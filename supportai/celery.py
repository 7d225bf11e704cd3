import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "supportai.settings")

app = Celery("supportai")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.worker_init.connect
@signals.beat_init.connect
def _process_start(**_kwargs) -> None:
    """The worker and beat start like every other process (supportai/startup.py)."""
    from supportai.startup import process_start

    process_start()
