"""Seed the demo organization on first start (idempotent) and print how to get in."""

import json

from django.core.management.base import BaseCommand

from organizations.models import Organization
from supportai.demo import DEMO_EMAIL, DEMO_PASSWORD, DEMO_SLUG, demo_seed


class Command(BaseCommand):
    help = "Create the demo organization, owner, API key, assistant, knowledge and widget once."

    def add_arguments(self, parser):
        parser.add_argument("--port", default="8000")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **options):
        first_start = not Organization.objects.filter(slug=DEMO_SLUG).exists()
        result = demo_seed() if first_start else {}
        base = f"http://127.0.0.1:{options['port']}"
        if options["json"]:
            self.stdout.write(json.dumps(result))
            return
        lines = [
            "",
            "=" * 64,
            f"  Dashboard:   {base}/",
            f"  Log in as:   {DEMO_EMAIL} / {DEMO_PASSWORD}",
            f"  API docs:    {base}/api/docs/",
        ]
        if first_start:
            lines += [
                f"  Demo API key (shown once): client_id={result['client_id']}",
                f"                             client_secret={result['client_secret']}",
            ]
            for label, value in result.items():
                if label not in {"client_id", "client_secret"}:
                    lines.append(f"  {label}: {value}")
        lines.append("=" * 64)
        self.stdout.write("\n".join(lines))
