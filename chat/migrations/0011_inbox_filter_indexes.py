"""The inbox's Unanswered and Feedback filters as partial indexes on chat_message
(`chat.selectors.conversation_list`).

Their EXISTS (an answer of the conversation that was not grounded; a rated answer) read every
message of the organization for the paginators' count. The partial indexes hold only the
flagged answers, keyed (organization, conversation): the count and the first page read those
entries, not the messages. Built concurrently (no lock on a busy table's writes); reversible."""

from django.contrib.postgres.operations import AddIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("chat", "0010_inbox_activity_indexes"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="message",
            index=models.Index(
                condition=models.Q(("answered", False), ("role", "assistant"), ("status", "complete")),
                fields=["organization", "conversation"],
                name="chat_msg_org_unanswered",
            ),
        ),
        AddIndexConcurrently(
            model_name="message",
            index=models.Index(
                condition=models.Q(("feedback__isnull", False)),
                fields=["organization", "conversation", "feedback"],
                name="chat_msg_org_feedback",
            ),
        ),
    ]
