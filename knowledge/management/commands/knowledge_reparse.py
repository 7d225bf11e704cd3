"""Cut knowledge again with this release's parser and chunker, after upgrading.

A document keeps the chunks it was cut into when it was stored, and re-indexing skips a document
whose text is unchanged, so a release that parses or chunks better (`knowledge.chunking.
PARSER_VERSION`) would otherwise improve only what is added after it. This queues, on the
ingestion queue, every ready file and URL source with a document cut by an older version:
- a file is parsed again from its uploaded original, where one is kept (the organization's
  "Keep original files" setting; by default originals are deleted once parsed, and chunks alone
  cannot be cut again: those files are counted and named, and only a new upload improves them);
- a URL is read from the site again, as its scheduled re-sync does.
The worker replaces each document's chunks in one transaction once the new ones are embedded,
so search keeps answering from the old chunks until then, and a failure keeps them (noted on
the source; the next run tries again). Q&A pairs, and answers already given, are not touched.
For every organization or one (`--organization SLUG`); `--dry-run` only counts. Running it again
queues nothing once the worker is done."""

from django.core.management.base import CommandError

from knowledge import services
from knowledge.management.commands._per_organization import PerOrganizationCommand


class Command(PerOrganizationCommand):
    help = "Re-parse file and URL sources whose chunks were cut by an older parser or chunker."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--dry-run", action="store_true", help="count, queue nothing")

    def handle(self, *args, **options):
        from knowledge.tasks import source_reparse_task

        queued = not_kept = 0
        verb = "to queue" if options["dry_run"] else "queued"
        for organization in self.organizations(options):
            found = services.sources_reparse_due(organization=organization)
            if not options["dry_run"]:
                try:
                    for source_id in found.due:
                        source_reparse_task.delay(str(source_id))
                except Exception as error:  # the broker is down: nothing is lost, run it again later
                    raise CommandError(
                        f"could not queue the re-parse ({error.__class__.__name__}); check the broker "
                        "(manage.py broker_check) and run this again"
                    )
            if found.due:
                self.stdout.write(f"{organization.slug}: {len(found.due)} source(s) {verb} for re-parsing")
            if found.not_kept:
                self.stdout.write(
                    f"{organization.slug}: {len(found.not_kept)} file source(s) cannot be re-parsed, "
                    "their originals were not kept (upload them again to improve them): "
                    + ", ".join(str(source_id) for source_id in found.not_kept)
                )
            queued += len(found.due)
            not_kept += len(found.not_kept)
        self.stdout.write(
            f"{queued} source(s) {verb} for re-parsing; {not_kept} file source(s) without an original"
        )
