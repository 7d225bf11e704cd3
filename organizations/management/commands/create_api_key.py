import json

from django.core.management.base import BaseCommand, CommandError

from core.errors import ApplicationError
from organizations.audit import AuditActor, audit_record
from organizations.selectors import organization_get_by_slug
from organizations.services import api_key_create


class Command(BaseCommand):
    help = "Create an API key; the secret is printed once and never stored."

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="organization slug")
        parser.add_argument("--name", required=True)
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **options):
        organization = organization_get_by_slug(slug=options["org"])
        if organization is None:
            raise CommandError(f"No organization with slug '{options['org']}'.")
        try:
            api_key, secret = api_key_create(organization=organization, name=options["name"])
        except ApplicationError as error:
            raise CommandError(error.message) from None
        audit_record(
            organization=organization,
            action="api_key.created",
            actor=AuditActor(name="manage.py create_api_key", kind="system"),
            target_type="apikey",
            target_id=api_key.pk,
            changes={"name": api_key.name, "client_id": api_key.client_id},
        )
        if options["json"]:
            self.stdout.write(json.dumps({"client_id": api_key.client_id, "client_secret": secret}))
        else:
            self.stdout.write(
                f"client_id:     {api_key.client_id}\nclient_secret: {secret}\n"
                "Store the secret now: it cannot be shown again."
            )
