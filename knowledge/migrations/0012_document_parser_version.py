"""Which parser and chunker cut each document's chunks (`knowledge.chunking.PARSER_VERSION`).
Documents stored before get 0, older than any release's: `manage.py knowledge_reparse` cuts
them again where it can (docs/knowledge.md, "After upgrading")."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('knowledge', '0011_vector_generation'),
    ]

    operations = [
        migrations.AddField(
            model_name='knowledgedocument',
            name='parser_version',
            field=models.PositiveSmallIntegerField(default=0),
        ),
    ]
