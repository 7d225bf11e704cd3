from django.apps import AppConfig
from django.db.backends.signals import connection_created
from django.db.models.signals import post_migrate


def cache_table_ensure(**kwargs) -> None:
    """Without Redis the cache (rate limits, caches) is a Postgres table. Create it after every
    `migrate`, not only in the first migration: a database first migrated with REDIS_URL set
    (by `make bench`, or a deployment that later drops Redis) would otherwise have no table,
    and every cached request would fail. `createcachetable` skips a table that exists."""
    from django.conf import settings
    from django.core.management import call_command

    if settings.CACHES["default"]["BACKEND"].endswith("DatabaseCache"):
        call_command("createcachetable", database=kwargs.get("using", "default"), verbosity=0)


class SupportAIConfig(AppConfig):
    name = "supportai"
    verbose_name = "SupportAI platform"

    def ready(self) -> None:
        # Not `sender=self`: the handler must run whichever app's migrations ran. It runs
        # once per migrated app; each run after the first is one query that finds the table.
        post_migrate.connect(cache_table_ensure, dispatch_uid="supportai.cache_table_ensure")
        from supportai.prepared import stale_plan_retry_install

        connection_created.connect(stale_plan_retry_install, dispatch_uid="supportai.stale_plan_retry")
