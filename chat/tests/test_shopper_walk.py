"""The shopper questions (bench/data/shopper_questions.json) through the real ingestion and
`message_post`, read mechanically (testkit/shopper_walk.py): regression floors under the
figures in docs/benchmarks.md "Shopper questions to the offline answerer"."""

from collections import Counter

import pytest

pytestmark = pytest.mark.django_db


def test_shopper_questions_to_the_offline_answerer(offline):
    from testkit.shopper_walk import run

    rows = run()
    outcomes = Counter(row["outcome"] for row in rows)
    by_question = {row["question"]: row for row in rows}
    assert len(rows) >= 40
    # Nothing a visitor should not read: no Markdown or HTML marks, table pipes, stray bullets or
    # walls of text; every small-talk message answered as such; nothing out of scope answered.
    assert [row["question"] for row in rows if row["problems"]] == []
    assert outcomes["small talk missed"] == 0 and outcomes["false answer"] == 0
    assert outcomes["ok"] >= 30
    # The help page's list and table are quoted as such.
    payment = by_question["what payment methods do you accept"]["answer"]
    assert payment.startswith("We accept:\n- ") and "\n- PayPal\n" in payment
    assert "Express: 1-2 business days, $15" in by_question["how much is express shipping"]["answer"]
