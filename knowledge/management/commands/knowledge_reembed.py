"""Give chunks their organization's embedder's vectors now, instead of waiting for the re-embed job.

The Celery beat job `knowledge.tasks.chunks_reembed` does the same every 15 minutes (at most
5,000 chunks a run): chunks embedded by another model or not at all (a provider outage), and
Q&A pairs stored before their question had a vector of its own. For every organization or one
(`--organization SLUG`); running it again changes nothing."""

from django.core.management.base import BaseCommand, CommandError

from knowledge import services
from organizations.models import Organization


class Command(BaseCommand):
    help = "Embed knowledge chunks that lack the current embedder's vectors (and Q&A questions' vectors)."

    def add_arguments(self, parser):
        parser.add_argument("--organization", default="", help="an organization's slug (default: all)")

    def handle(self, *args, **options):
        organizations = Organization.objects.all().order_by("created_at")
        if options["organization"]:
            organizations = organizations.filter(slug=options["organization"])
            if not organizations.exists():
                raise CommandError(f"no organization with the slug {options['organization']!r}")
        total = 0
        for organization in organizations.iterator():
            done = services.chunks_reembed(organization=organization)
            total += done
            if done:
                self.stdout.write(f"{organization.slug}: {done} chunk(s) embedded")
        self.stdout.write(f"{total} chunk(s) embedded")
