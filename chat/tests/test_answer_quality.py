"""The in-repo answer-quality set, scored with the offline answerer (bench/answer_quality.py)."""

import pytest

pytestmark = pytest.mark.django_db


def test_offline_answerer_quality_on_the_in_repo_set(offline):
    from testkit.answer_quality import run

    figures = run(verbose=False)["figures"]
    assert figures["questions"] >= 30 and figures["unanswerable"] >= 5
    # Regression floors, under the measured figures (docs/benchmarks.md). Since the relevance
    # gate was fitted on three larger knowledge bases with near-miss questions (issue 19), it
    # refuses more here (false refusals 0.065 -> 0.161, fact recall 0.935 -> 0.839, right Q&A
    # first 0.929 -> 0.821) and answers far fewer out-of-scope questions there
    # (bench/relevance_gate.py): the floors moved with it. The unknown-word signals (a
    # question's words that no chunk contains) and question-to-question Q&A matching gave it
    # back: fact recall 0.935, right Q&A first 0.929, false refusals 0.065; false answers 0.111
    # ("Can I pay with Bitcoin?" is answered with the list of accepted payment methods, which
    # does answer it by omission). The signed refit with the floor on the full-text cosine:
    # false answers 0.0, false refusals 0.032, fact recall and right Q&A first unchanged.
    assert figures["fact_recall"] >= 0.88
    assert figures["false_answer_rate"] <= 0.15
    assert figures["right_qa_first"] >= 0.88
