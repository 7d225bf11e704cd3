from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("supportai", "0001_platform")]

    operations = [
        migrations.CreateModel(
            name="RateCounter",
            fields=[
                ("key", models.CharField(max_length=250, primary_key=True, serialize=False)),
                (
                    "window_end",
                    models.BigIntegerField(help_text="Unix time at which the current window ends"),
                ),
                ("count", models.BigIntegerField(default=0)),
            ],
            options={"db_table": "supportai_rate_counter"},
        ),
        # Counters need no crash safety: skip the WAL (cheaper writes); a crash empties the
        # table, which only restarts the current windows.
        migrations.RunSQL(
            "ALTER TABLE supportai_rate_counter SET UNLOGGED",
            "ALTER TABLE supportai_rate_counter SET LOGGED",
        ),
    ]
