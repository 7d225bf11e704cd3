"""Message.seq: each message's position in its conversation in commit order (the cursor of
`?after=` and of the live stream's Last-Event-ID), and Conversation.message_seq, the counter.

Existing messages are numbered in their old order (created_at, id).

Message.tool_rounds: the assistant actions a turn has run, so a retried turn never runs one twice."""

from django.db import migrations, models

NUMBER_MESSAGES = """
UPDATE chat_message AS m SET seq = numbered.position
FROM (
    SELECT id, row_number() OVER (PARTITION BY conversation_id ORDER BY created_at, id) AS position
    FROM chat_message
) AS numbered
WHERE m.id = numbered.id
"""

SET_COUNTERS = """
UPDATE chat_conversation AS c SET message_seq = counted.top
FROM (SELECT conversation_id, max(seq) AS top FROM chat_message GROUP BY conversation_id) AS counted
WHERE c.id = counted.conversation_id
"""


class Migration(migrations.Migration):
    dependencies = [
        ("chat", "0008_message_tool_calls"),
    ]

    operations = [
        migrations.AddField(
            model_name="conversation",
            name="message_seq",
            field=models.BigIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="message",
            name="seq",
            field=models.BigIntegerField(null=True),
        ),
        migrations.RunSQL(NUMBER_MESSAGES, migrations.RunSQL.noop),
        migrations.RunSQL(SET_COUNTERS, migrations.RunSQL.noop),
        migrations.AlterField(
            model_name="message",
            name="seq",
            field=models.BigIntegerField(),
        ),
        migrations.AddField(
            model_name="message",
            name="tool_rounds",
            field=models.JSONField(blank=True, default=list),
        ),
        migrations.AddConstraint(
            model_name="message",
            constraint=models.UniqueConstraint(fields=("conversation", "seq"), name="chat_msg_conv_seq"),
        ),
    ]
