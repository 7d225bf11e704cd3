"""Give chunks their organization's embedder's vectors now, instead of waiting for the re-embed job.

The Celery beat job `knowledge.tasks.chunks_reembed` does the same every 15 minutes (at most
5,000 chunks a run): chunks embedded by another model or not at all (a provider outage), and
Q&A pairs stored before their question had a vector of its own. For every organization or one
(`--organization SLUG`); running it again changes nothing."""

from knowledge import services
from knowledge.management.commands._per_organization import PerOrganizationCommand


class Command(PerOrganizationCommand):
    help = "Embed knowledge chunks that lack the current embedder's vectors (and Q&A questions' vectors)."
    run = staticmethod(services.chunks_reembed)
    outcome = "embedded"
