"""Conversations at shop scale, seeded in SQL: `conversations_insert` writes N conversations of
one organization with their messages in one statement (`generate_series`): a tenth without
messages (`last_message_at` NULL), the others 2-6 messages each, last activity scattered over
the last ~35 days; 80 % sessions, 20 % customer conversations; 1 % waiting for a person, 2 %
taken over by the operator, a third resolved; the first question of conversation i names its
order and email ("customer-i@example.com … order A-i?"); every fourth message (an answer) not grounded
(`answered` false: over half the conversations are "unanswered"); the first answer of 2.5 % of
the conversations rated up, of 2.5 % down and of 2.5 % 0. Shared by the inbox's scale tests
(chat/tests/test_inbox_scale.py) and its benchmark (bench/inbox.py)."""

from __future__ import annotations

_SEED_SQL = """
WITH inserted AS (
INSERT INTO chat_conversation (
    id, organization_id, created_at, updated_at, assistant_id, kind, visitor_id, customer_id,
    visitor_verified, user_context_id, title, locale, metadata, external_session_id, widget_id,
    handoff_status, assigned_to_id, handoff_trigger, handoff_reason, handoff_requested_at,
    handoff_email, handoff_notified_at, visitor_seen_at, first_human_reply_at, resolved_at,
    resolved_by_id, resolution_count, last_message_at, message_seq
)
SELECT gen_random_uuid(), %(organization)s, created, created, %(assistant)s,
    CASE WHEN i %% 5 = 0 THEN 'conversation' ELSE 'session' END,
    'visitor-' || i, CASE WHEN i %% 5 = 0 THEN 'customer-' || i ELSE '' END,
    false, NULL, '', 'en', '{}'::jsonb, '', NULL,
    status, CASE WHEN status = 'human' OR i %% 30 = 0 THEN %(operator)s::integer END,
    CASE WHEN status = 'waiting' THEN 'asked' ELSE '' END, '',
    CASE WHEN status IN ('waiting', 'human') THEN last_at END,
    '', NULL, NULL, NULL, CASE WHEN status = 'resolved' THEN last_at END, NULL,
    CASE WHEN status = 'resolved' THEN 1 ELSE 0 END, last_at, messages
FROM (
    SELECT i, created, messages,
        CASE WHEN messages > 0 THEN created + (random() * interval '3 days') END AS last_at,
        CASE WHEN i %% 100 = 0 THEN 'waiting' WHEN i %% 50 = 1 THEN 'human'
             WHEN i %% 3 = 0 THEN 'resolved' ELSE 'bot' END AS status
    FROM (
        SELECT i, now() - interval '35 days' * (1 - i::float / %(count)s) AS created,
            CASE WHEN i %% 10 = 0 THEN 0 ELSE 2 + i %% 5 END AS messages
        FROM generate_series(1, %(count)s) AS i
    ) numbered
) drawn
RETURNING id, organization_id, created_at, last_message_at, message_seq, visitor_id
)
INSERT INTO chat_message (
    id, organization_id, created_at, conversation_id, role, content, metadata, sources,
    tool_calls, tool_rounds, in_reply_to_id, status, answered, feedback, author_id, model,
    prompt_tokens, completion_tokens, cost, latency_ms, idempotency_key, request_fingerprint, seq
)
SELECT gen_random_uuid(), c.organization_id,
    c.created_at + (c.last_message_at - c.created_at) * n / c.message_seq, c.id,
    CASE WHEN n %% 2 = 1 THEN 'user' ELSE 'assistant' END,
    CASE WHEN n = 1 THEN 'Hi, this is customer-' || split_part(c.visitor_id, '-', 2)
            || '@example.com. Where is my order A-' || split_part(c.visitor_id, '-', 2) || '?'
         WHEN n %% 2 = 1 THEN 'Where is my order ' || n || '?'
         ELSE 'Your order ships within two days (' || n || ').' END,
    '{}'::jsonb, '[]'::jsonb, '[]'::jsonb, '[]'::jsonb, NULL, 'complete', n %% 4 <> 0,
    CASE WHEN n = 2 THEN CASE split_part(c.visitor_id, '-', 2)::integer %% 40
        WHEN 7 THEN 1 WHEN 21 THEN -1 WHEN 33 THEN 0 END END, NULL,
    CASE WHEN n %% 2 = 0 THEN 'offline' ELSE '' END, 0, 0, 0, 0, '', '', n
FROM inserted c, generate_series(1, c.message_seq) AS n
"""


def conversations_insert(cursor, *, organization, assistant, operator, count: int) -> None:
    """`count` conversations of `organization` with their messages, as described above (the
    same every time: `setseed`), then ANALYZE so the planner knows them (the tests use it too)."""
    cursor.execute("SELECT setseed(0.42)")
    arguments = {
        "organization": organization.pk,
        "assistant": assistant.pk,
        "operator": operator.pk,
        "count": count,
    }
    cursor.execute(_SEED_SQL, arguments)  # the conversations and their messages, one statement
    cursor.execute("ANALYZE chat_conversation")
    cursor.execute("ANALYZE chat_message")
