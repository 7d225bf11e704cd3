import json

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from core.errors import ApplicationError
from organizations.audit import AuditActor, audit_record
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
        before = organization.llm_daily_token_budget
        try:
            with transaction.atomic():  # the change and its audit event, or neither
                organization_llm_budget_set(organization=organization, budget=options["tokens"])
                self._audit(organization=organization, before=before)
        except ApplicationError as error:
            raise CommandError(error.message) from None
        budget = organization.llm_daily_token_budget
        if options["json"]:
            self.stdout.write(json.dumps({"slug": organization.slug, "llm_daily_token_budget": budget}))
        else:
            shown = "unlimited" if budget is None else f"{budget:,} tokens"
            self.stdout.write(f"{organization.name}: daily LLM budget {shown} (resets at 00:00 UTC).")

    @staticmethod
    def _audit(*, organization, before) -> None:
        after = organization.llm_daily_token_budget
        if after != before:
            audit_record(
                organization=organization,
                action="settings.updated",
                actor=AuditActor(name="manage.py set_llm_budget", kind="system"),
                target_type="organization",
                target_id=organization.pk,
                changes={"llm_daily_budget": [before, after]},  # not "…_token_…": that would be redacted
            )
