"""The inbox's orderings as indexes (`chat.selectors.INBOX_ORDER`, `WAITING_ORDER`).

`chat_conv_org_last_message` was (organization, last_message_at DESC), i.e. NULLS FIRST: the
inbox's `last_message_at DESC NULLS LAST, created_at DESC` could not use it, and its first page
sorted every conversation of the organization. Built concurrently (no lock on a busy table's
writes), the new ones before the old ones go; reversible."""

from django.contrib.postgres.operations import AddIndexConcurrently, RemoveIndexConcurrently
from django.db import migrations, models


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("chat", "0009_message_seq_tool_rounds"),
    ]

    operations = [
        AddIndexConcurrently(
            model_name="conversation",
            index=models.Index(
                models.F("organization"),
                models.OrderBy(models.F("last_message_at"), descending=True, nulls_last=True),
                models.OrderBy(models.F("created_at"), descending=True),
                models.OrderBy(models.F("id"), descending=True),
                name="chat_conv_org_activity",
            ),
        ),
        AddIndexConcurrently(
            model_name="conversation",
            index=models.Index(
                models.F("organization"),
                models.F("kind"),
                models.OrderBy(models.F("last_message_at"), descending=True, nulls_last=True),
                models.OrderBy(models.F("created_at"), descending=True),
                models.OrderBy(models.F("id"), descending=True),
                name="chat_conv_org_kind_activity",
            ),
        ),
        AddIndexConcurrently(
            model_name="conversation",
            index=models.Index(
                condition=models.Q(("handoff_status", "waiting")),
                fields=["organization", "handoff_requested_at", "created_at", "id"],
                name="chat_conv_org_waiting_queue",
            ),
        ),
        RemoveIndexConcurrently(model_name="conversation", name="chat_conv_org_last_message"),
        RemoveIndexConcurrently(model_name="conversation", name="chat_conv_org_waiting"),
    ]
