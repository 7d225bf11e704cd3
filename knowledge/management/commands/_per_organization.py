"""What the knowledge maintenance commands share: a service run for every organization, oldest
first, or for one (`--organization SLUG`), with a count per organization and in all."""

from django.core.management.base import BaseCommand, CommandError

from organizations.models import Organization


class PerOrganizationCommand(BaseCommand):
    # The service, called as `run(organization=…)`, returning how many chunks it changed; and
    # what the counts say ("embedded", "re-analysed").
    run = None
    outcome = ""

    def add_arguments(self, parser):
        parser.add_argument("--organization", default="", help="an organization's slug (default: all)")

    def organizations(self, options):
        organizations = Organization.objects.all().order_by("created_at")
        if options["organization"]:
            organizations = organizations.filter(slug=options["organization"])
            if not organizations.exists():
                raise CommandError(f"no organization with the slug {options['organization']!r}")
        return organizations.iterator()

    def handle(self, *args, **options):
        total = 0
        for organization in self.organizations(options):
            changed = self.run(organization=organization)
            total += changed
            if changed:
                self.stdout.write(f"{organization.slug}: {changed} chunk(s) {self.outcome}")
        self.stdout.write(f"{total} chunk(s) {self.outcome}")
