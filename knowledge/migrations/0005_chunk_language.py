from django.db import migrations, models


class Migration(migrations.Migration):
    """Chunks record the language their terms were analysed in. Existing chunks were analysed
    as English, so they are English (`manage.py knowledge_reanalyse` re-detects and re-weights)."""

    dependencies = [
        ("knowledge", "0004_qa_made_from_question"),
    ]

    operations = [
        migrations.AddField(
            model_name="chunk",
            name="language",
            field=models.CharField(default="en", max_length=8),
        ),
    ]
