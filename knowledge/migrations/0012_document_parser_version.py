"""Which parser and chunker cut each document's chunks (`knowledge.chunking.PARSER_VERSION`).
Documents stored before get 0, older than any release's: `manage.py knowledge_reparse` cuts
them again where it can (docs/knowledge.md, "After upgrading").

Written out rather than `AddField`, which adds the column with its `>= 0` check in one
statement: Postgres then reads every row of `knowledge_knowledgedocument` to verify the check
while it holds the table's exclusive lock (measured: 0.8 s per 2 million rows, warm, against
under 1 ms without the check), and every chat turn and ingestion that reads documents waits.
Here the column is added alone (a constant default: no rewrite, no scan), the check is added
`NOT VALID` (no scan) and validated in a statement of its own, outside the migration's
transaction (`atomic = False`), under a lock that lets reads and writes go on. The schema is
the one `AddField` gives (the same constraint name Postgres gives a column's check)."""

from django.db import migrations, models

TABLE = "knowledge_knowledgedocument"
CHECK = "knowledge_knowledgedocument_parser_version_check"


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ('knowledge', '0011_vector_generation'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddField(
                    model_name='knowledgedocument',
                    name='parser_version',
                    field=models.PositiveSmallIntegerField(default=0),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    f'ALTER TABLE "{TABLE}" ADD COLUMN "parser_version" smallint DEFAULT 0 NOT NULL; '
                    f'ALTER TABLE "{TABLE}" ALTER COLUMN "parser_version" DROP DEFAULT;',
                    reverse_sql=f'ALTER TABLE "{TABLE}" DROP COLUMN "parser_version";',
                ),
                migrations.RunSQL(
                    f'ALTER TABLE "{TABLE}" ADD CONSTRAINT "{CHECK}" CHECK ("parser_version" >= 0) NOT VALID;',
                    reverse_sql=migrations.RunSQL.noop,
                ),
                migrations.RunSQL(
                    f'ALTER TABLE "{TABLE}" VALIDATE CONSTRAINT "{CHECK}";',
                    reverse_sql=migrations.RunSQL.noop,
                ),
            ],
        ),
    ]
