"""Detect the language of existing chunks and re-weight those that are not English.

Chunks indexed before languages were detected were analysed as English (stop words, stemmer);
new chunks are analysed in their own language. Run once after upgrading, for every
organization or one (`--organization SLUG`); running it again changes nothing."""

from knowledge import services
from knowledge.management.commands._per_organization import PerOrganizationCommand


class Command(PerOrganizationCommand):
    help = "Re-detect the language of knowledge chunks and re-weight those whose language changed."
    run = staticmethod(services.chunks_reanalyse)
    outcome = "re-analysed"
