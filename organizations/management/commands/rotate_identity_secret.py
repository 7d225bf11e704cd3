import json

from django.core.management.base import BaseCommand, CommandError

from organizations.audit import AuditActor, audit_record
from organizations.identity import identity_secret_previous_end, identity_secret_rotate
from organizations.selectors import organization_get_by_slug


class Command(BaseCommand):
    help = (
        "Create (or rotate) the organization's identity secret for verified visitors; it is "
        "printed once. The previous secret stays valid for IDENTITY_SECRET_GRACE_HOURS, unless "
        "--end-previous (it leaked: stop accepting it now)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--org", required=True, help="organization slug")
        parser.add_argument("--json", action="store_true")
        parser.add_argument(
            "--end-previous",
            action="store_true",
            help="stop accepting the previous secret(s) at once instead of after the grace period",
        )

    def handle(self, *args, **options):
        organization = organization_get_by_slug(slug=options["org"])
        if organization is None:
            raise CommandError(f"No organization with slug '{options['org']}'.")
        row, secret = identity_secret_rotate(organization=organization)
        audit_record(
            organization=organization,
            action="identity_secret.rotated",
            actor=AuditActor(name="manage.py rotate_identity_secret", kind="system"),
            target_type="identitysecret",
            target_id=row.pk,
            changes={"hint": row.hint},
        )
        if options["end_previous"]:
            ended = identity_secret_previous_end(organization=organization)
            audit_record(
                organization=organization,
                action="identity_secret.previous_ended",
                actor=AuditActor(name="manage.py rotate_identity_secret", kind="system"),
                target_type="identitysecret",
                changes={"ended": ended},
            )
        if options["json"]:
            self.stdout.write(json.dumps({"identity_secret": secret}))
        else:
            self.stdout.write(
                f"identity_secret: {secret}\nStore it now on your server: it cannot be shown again."
            )
