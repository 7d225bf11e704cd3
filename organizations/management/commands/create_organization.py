import json

from django.core.management.base import BaseCommand, CommandError

from core.errors import ApplicationError
from organizations.services import organization_create


class Command(BaseCommand):
    help = "Create an organization with an owner account."

    def add_arguments(self, parser):
        parser.add_argument("--name", required=True)
        parser.add_argument("--owner-email", required=True)
        parser.add_argument("--owner-password", required=True)
        parser.add_argument("--rate-limit", type=int, default=None, help="requests per hour")
        parser.add_argument(
            "--llm-daily-token-budget",
            default=None,
            help="LLM tokens per UTC day: a whole number (0 = no LLM calls) or 'unlimited' "
            "(default: LLM_DAILY_TOKEN_BUDGET)",
        )
        parser.add_argument("--slug", default=None)
        parser.add_argument("--json", action="store_true", help="print {id, slug} as JSON")

    def handle(self, *args, **options):
        budget = {}
        if options["llm_daily_token_budget"] is not None:
            budget["llm_daily_token_budget"] = options["llm_daily_token_budget"]
        try:
            organization = organization_create(
                name=options["name"],
                owner_email=options["owner_email"],
                owner_password=options["owner_password"],
                rate_limit_per_hour=options["rate_limit"],
                slug=options["slug"],
                **budget,
            )
        except ApplicationError as error:
            raise CommandError(error.message) from None
        result = {"id": str(organization.id), "slug": organization.slug}
        if options["json"]:
            self.stdout.write(json.dumps(result))
        else:
            self.stdout.write(f"Created organization {organization.name} ({organization.slug}).")
