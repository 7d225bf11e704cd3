from django.conf import settings
from django.core.management import call_command
from django.db import migrations
from pgvector.django import VectorExtension


def create_cache_table(apps, schema_editor):
    # Only the Postgres-backed cache (no REDIS_URL) needs a table; the command is idempotent.
    if settings.CACHES["default"]["BACKEND"].endswith("DatabaseCache"):
        call_command("createcachetable", verbosity=0)


class Migration(migrations.Migration):
    initial = True
    dependencies: list = []
    operations = [
        VectorExtension(),
        migrations.RunPython(create_cache_table, migrations.RunPython.noop),
    ]
