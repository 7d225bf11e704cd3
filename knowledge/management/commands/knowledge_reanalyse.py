"""Detect the language of existing chunks and re-weight those that are not English.

Chunks indexed before languages were detected were analysed as English (stop words, stemmer);
new chunks are analysed in their own language. Run once after upgrading, for every
organization or one (`--organization SLUG`); running it again changes nothing."""

from django.core.management.base import BaseCommand, CommandError

from knowledge import services
from organizations.models import Organization


class Command(BaseCommand):
    help = "Re-detect the language of knowledge chunks and re-weight those whose language changed."

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
            changed = services.chunks_reanalyse(organization=organization)
            total += changed
            if changed:
                self.stdout.write(f"{organization.slug}: {changed} chunk(s) re-analysed")
        self.stdout.write(f"{total} chunk(s) re-analysed")
