"""Exit non-zero, with a message a newcomer can act on, when the Celery broker cannot be reached
(`make run` runs this before starting anything: a worker that cannot connect retries quietly
forever, and every upload would stay pending)."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


def _redacted(url: str) -> str:
    """The broker URL without its password."""
    scheme, _, rest = url.partition("://")
    credentials, at, location = rest.rpartition("@")
    if not at:
        return url
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{location}" if ":" in credentials else f"{scheme}://{user}@{location}"


class Command(BaseCommand):
    help = "Connect to the Celery broker once; fail with a clear message if it does not answer."

    def add_arguments(self, parser):
        parser.add_argument("--timeout", type=float, default=5.0)

    def handle(self, *args, **options):
        from supportai.celery import app

        url = settings.CELERY_BROKER_URL
        try:
            with app.connection_for_write() as connection:
                connection.ensure_connection(max_retries=1, timeout=options["timeout"])
                # The SQLAlchemy transport connects lazily: touch a queue to reach the database.
                connection.default_channel.queue_declare(queue="default", passive=False)
        except Exception as error:
            hint = (
                "Is Redis running at REDIS_URL? Unset REDIS_URL to use the Postgres broker instead."
                if url.startswith("redis")
                else "The broker is a table in the database Django uses; is that database up?"
            )
            raise CommandError(
                f"The Celery broker at {_redacted(url)} cannot be reached "
                f"({error.__class__.__name__}: {str(error)[:200]}). The worker would never pick up "
                f"an upload, so nothing was started. {hint}"
            )
        self.stdout.write(f"broker ok: {_redacted(url)}")
