"""Queue again the sources a dead worker was processing (`make run` runs this when it restarts
its worker; with one worker, everything it was processing before it died is lost)."""

from datetime import datetime

from django.core.management.base import BaseCommand, CommandError

from knowledge import services


class Command(BaseCommand):
    help = "Re-enqueue sources left `processing` by a worker that died before --started-before."

    def add_arguments(self, parser):
        parser.add_argument("--started-before", required=True, help="ISO time the worker died")

    def handle(self, *args, **options):
        from knowledge.tasks import source_ingest_task

        try:
            died_at = datetime.fromisoformat(options["started_before"])
        except ValueError:
            raise CommandError("--started-before must be an ISO 8601 time with a time zone.")
        if died_at.tzinfo is None:
            raise CommandError("--started-before must carry a time zone (e.g. +00:00).")
        lost = services.sources_lost(started_before=died_at)
        try:
            for source_id in lost:
                source_ingest_task.delay(str(source_id))
        except Exception as error:  # the broker is down too: the stuck-source sweep re-drives them
            raise CommandError(
                f"could not re-queue {len(lost)} source(s) ({error.__class__.__name__}); the "
                "stuck-source sweep will once the broker is back"
            )
        self.stdout.write(f"re-queued {len(lost)} source(s) the dead worker was processing")
