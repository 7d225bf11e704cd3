import json

from django.core.management.base import BaseCommand, CommandError

from core.errors import ApplicationError
from organizations.selectors import organization_get_by_slug
from organizations.services import organization_llm_budget_set


class Command(BaseCommand):
    help = "Set an organization's daily LLM token budget (per UTC day)."

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="organization slug")
        parser.add_argument(
            "--tokens", required=True, help="a whole number (0 = no LLM calls) or 'unlimited'"
        )
        parser.add_argument("--json", action="store_true", help="print {slug, llm_daily_token_budget}")

    def handle(self, *args, **options):
        organization = organization_get_by_slug(slug=options["org"])
        if organization is None:
            raise CommandError(f"No organization with slug '{options['org']}'.")
        try:
            organization_llm_budget_set(organization=organization, budget=options["tokens"])
        except ApplicationError as error:
            raise CommandError(error.message) from None
        budget = organization.llm_daily_token_budget
        if options["json"]:
            self.stdout.write(json.dumps({"slug": organization.slug, "llm_daily_token_budget": budget}))
        else:
            shown = "unlimited" if budget is None else f"{budget:,} tokens"
            self.stdout.write(f"{organization.name}: daily LLM budget {shown} (resets at 00:00 UTC).")
