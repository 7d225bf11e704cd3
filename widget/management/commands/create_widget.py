import json

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from core.errors import ApplicationError
from organizations.audit import AuditActor, audit_record
from organizations.selectors import api_key_widget_facing, organization_get_by_slug
from widget.selectors import widget_embed_snippet
from widget.services import widget_client_key_get_or_create, widget_create


class Command(BaseCommand):
    help = "Create a chat widget for an organization and print its embed snippet."

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="organization slug")
        parser.add_argument("--assistant", help="assistant id (default: the first active one, or a new one)")
        parser.add_argument(
            "--allowed-domain",
            action="append",
            default=[],
            dest="allowed_domains",
            help="site allowed to embed the widget: an origin (https://shop.example.com) or a bare "
            "host (shop.example.com means https://, localhost:8080 means http://); repeatable",
        )
        parser.add_argument("--title", help="header title of the chat panel")
        parser.add_argument("--instance", help="instance id, for several widgets on one page")
        parser.add_argument("--base-url", help="where this server is reachable (for the snippet)")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **options):
        organization = organization_get_by_slug(slug=options["org"])
        if organization is None:
            raise CommandError(f"No organization with slug '{options['org']}'.")
        fields = {"allowed_domains": options["allowed_domains"]}
        if options["title"]:
            fields["title"] = options["title"]
        if options["instance"]:
            fields["options"] = {"instance": options["instance"]}
        actor = AuditActor(name="manage.py create_widget", kind="system")
        try:
            with transaction.atomic():
                known_key = api_key_widget_facing(organization=organization)
                api_key = widget_client_key_get_or_create(organization=organization)
                widget = widget_create(organization=organization, assistant_id=options["assistant"], **fields)
                if known_key is None:
                    audit_record(
                        organization=organization,
                        action="api_key.created",
                        actor=actor,
                        target_type="apikey",
                        target_id=api_key.pk,
                        changes={"name": api_key.name, "client_id": api_key.client_id},
                    )
                audit_record(
                    organization=organization,
                    action="widget.created",
                    actor=actor,
                    target_type="widget",
                    target_id=widget.pk,
                    changes={"title": widget.title},
                )
        except ApplicationError as error:
            raise CommandError(error.message) from None
        if options["json"]:
            self.stdout.write(
                json.dumps(
                    {
                        "id": str(widget.id),
                        "client_id": api_key.client_id,
                        "assistant_id": str(widget.assistant_id),
                        "allowed_domains": widget.allowed_domains,
                    }
                )
            )
            return
        base_url = options["base_url"] or settings.SITE_URL
        snippet = widget_embed_snippet(widget=widget, base_url=base_url, client_id=api_key.client_id)
        self.stdout.write(
            f"widget id:    {widget.id}\nclient_id:    {api_key.client_id}\n"
            f"assistant id: {widget.assistant_id}\n"
            f"allowed:      {', '.join(widget.allowed_domains) or 'any site (no allowed domains)'}\n\nPaste this before </body> on your site:\n\n{snippet}\n"
        )
