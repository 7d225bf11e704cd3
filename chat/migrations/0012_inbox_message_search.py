"""The inbox's search of message text as a GIN index of its words (`chat.search`).

Without pg_trgm no index serves `icontains` on message text, so the search read every message
of the organization. The index holds `to_tsvector('simple', translate(content, <ASCII
punctuation>, <spaces>))`, the expression `chat.search.message_document` gives and the search
repeats. Built concurrently (no lock on a busy table's writes); reversible."""

import django.contrib.postgres.indexes
import django.contrib.postgres.search
from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("chat", "0011_inbox_filter_indexes"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="message",
            index=django.contrib.postgres.indexes.GinIndex(
                django.contrib.postgres.search.SearchVector(
                    models.Func(
                        models.F("content"),
                        models.Value("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"),
                        models.Value("                                "),
                        function="translate",
                        output_field=models.TextField(),
                    ),
                    config="simple",
                ),
                name="chat_msg_search",
            ),
        ),
    ]
