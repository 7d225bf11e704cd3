"""Platform tables that belong to no product app."""

from django.db import models


class RateCounter(models.Model):
    """One fixed-window request counter (a rate-limit bucket) when there is no Redis.

    One row per bucket key, incremented in place by `INSERT … ON CONFLICT DO UPDATE …
    RETURNING` (core.rate_counters), so concurrent web processes count exactly. The
    table is UNLOGGED (migration 0002): counters are worth no WAL traffic, and after a crash
    Postgres empties it, which only restarts the current windows.
    """

    key = models.CharField(max_length=250, primary_key=True)
    window_end = models.BigIntegerField(help_text="Unix time at which the current window ends")
    count = models.BigIntegerField(default=0)

    class Meta:
        db_table = "supportai_rate_counter"

    def __str__(self) -> str:
        return f"{self.key}: {self.count} until {self.window_end}"
