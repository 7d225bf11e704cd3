"""Fits the relevance gate's weights (chat.grounding.GATE_BY_EMBEDDER) on the dev split only.

Builds the three knowledge bases of `bench/data/support_kbs.json` in throw-away organizations
(as `bench/relevance_gate.py` does; `--embedder default|multilingual` picks the organizations'
embedder), retrieves each *dev* question's candidates the way a chat
turn does (`chat.grounding.knowledge_search`) and computes the gate's signals with the
product's own code (`chat.grounding.candidate_signals`). One example per question: the
signals of its candidate closest to it (largest cosine to key or full text), labelled 1 when
the knowledge answers the question (a paraphrase or a help-page question) and 0 when it is out
of scope. The held-out `test` split is never read.

The fit: features standardised on the dev examples, logistic regression with an L2 penalty
(λ = L2, Newton's method), the standardisation folded back into weights on the raw signals.
λ was chosen by leave-one-knowledge-base-out cross-validation on the dev split (printed: the
false-answer and false-refusal rates of each held-out knowledge base's questions under a
model fitted on the other two, at each fold's own best cut-off). Then the bias is shifted so
that relevance 0.5 is the cut-off that minimises false answers + false refusals on the dev
split, with the embedder's cosine floor (in force) applied as the product applies it.
(`bench/gate_fit.py` fits the first four signals one example per candidate, as the gate was
fitted before; it made the multilingual embedder's entry.)

Run: `.venv/bin/python bench/relevance_gate_fit.py [--embedder default|multilingual]`; paste
the printed entry into `GATE_BY_EMBEDDER` in chat/grounding.py.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.relevance_gate import DATA, _setup, questions  # noqa: E402

L2_CHOICES = (1.0, 3.0, 10.0, 30.0)
FLOOR = {"cosine_floor": 0.0}  # set from the embedder's parameters in force


def _every_signal() -> dict:
    from chat.grounding import GATE_SIGNALS

    return {"weights": dict.fromkeys(GATE_SIGNALS, 1.0)}


def examples_collect(*, choice: str = "default") -> list[dict]:
    """{kb, answerable, signals (of the question's closest candidate, or None), all (every
    candidate's signals)} for every dev question."""
    from assistants.models import Assistant
    from chat import grounding
    from organizations.services import organization_create
    from testkit.answer_quality import knowledge_build

    data = json.loads(DATA.read_text())
    rows = []
    for knowledge_base in data["knowledge_bases"]:
        suffix = uuid.uuid4().hex[:8]
        organization = organization_create(
            name=f"Relevance gate fit {suffix}",
            slug=f"bench-gate-fit-{suffix}",
            owner_email=f"bench-gate-fit-{suffix}@example.com",
            owner_password=uuid.uuid4().hex,
        )
        try:
            organization.knowledge_embedder = choice
            organization.save(update_fields=["knowledge_embedder"])
            assistant = Assistant.objects.create(organization=organization, name=knowledge_base["name"][:100])
            knowledge_build(organization=organization, data=knowledge_base)
            for row in questions(knowledge_base):
                if row["split"] != "dev":
                    continue
                candidates = grounding.knowledge_search(
                    organization=organization, assistant=assistant, query=row["text"]
                )
                signals = (
                    grounding.candidate_signals(
                        question=row["text"],
                        candidates=candidates,
                        organization=organization,
                        parameters=_every_signal(),
                    )
                    or []
                )
                closest = max(signals, key=lambda item: max(item["key"], item["full"]), default=None)
                rows.append(
                    {
                        "kb": knowledge_base["id"],
                        "answerable": row["kind"] != "unanswerable",
                        "signals": closest,
                        "all": signals,
                    }
                )
        finally:
            organization.delete()
    return rows


def _logistic(features, labels, l2: float):
    """Weights (last = intercept) of an L2-penalised logistic regression, by Newton's method."""
    import numpy

    design = numpy.hstack([features, numpy.ones((len(features), 1))])
    weights = numpy.zeros(design.shape[1])
    penalty = numpy.diag([l2] * (design.shape[1] - 1) + [0.0])
    for _ in range(100):
        probability = 1 / (1 + numpy.exp(-design @ weights))
        gradient = design.T @ (probability - labels) + penalty @ weights
        hessian = (design * (probability * (1 - probability))[:, None]).T @ design + penalty
        step = numpy.linalg.solve(hessian, gradient)
        weights -= step
        if numpy.abs(step).max() < 1e-10:
            break
    return weights


def _raw_params(weights, mean, scale) -> tuple[dict, float]:
    """Standardised-feature weights as weights on the raw signals."""
    from chat.grounding import GATE_SIGNALS

    raw = weights[:-1] / scale
    bias = float(weights[-1] - (raw * mean).sum())
    return dict(zip(GATE_SIGNALS, map(float, raw), strict=True)), bias


def question_scores(rows: list[dict], params: dict) -> list[float]:
    """Each question's best candidate relevance logit under `params`, the cosine floor applied."""
    from chat.grounding import GATE_SIGNALS

    scores = []
    for row in rows:
        best = -1e9
        for signals in row["all"]:
            z = params["bias"] + sum(params["weights"][name] * signals[name] for name in GATE_SIGNALS)
            if signals["cosine"] < FLOOR["cosine_floor"]:
                continue  # the floor: below the cut-off (wherever it is), whatever the signals
            best = max(best, z)
        scores.append(best)
    return scores


def cut_off(rows: list[dict], scores: list[float]) -> tuple[float, float, float]:
    """(cut-off, false-answer rate, false-refusal rate) minimising their sum (ties: fewer false answers)."""
    out = [score for row, score in zip(rows, scores, strict=True) if not row["answerable"]]
    ins = [score for row, score in zip(rows, scores, strict=True) if row["answerable"]]
    best = None
    for threshold in sorted(set(scores)) + [1e9]:
        false_answers = sum(score >= threshold for score in out) / len(out)
        false_refusals = sum(score < threshold for score in ins) / len(ins)
        key = (false_answers + false_refusals, false_answers)
        if best is None or key < best[0]:
            best = (key, threshold, false_answers, false_refusals)
    return best[1], best[2], best[3]


def frontier(rows: list[dict], scores: list[float]) -> list[tuple[float, float, float]]:
    """(false answers, false refusals, CHAT_RELEVANCE_THRESHOLD that gives them) at the cut-offs
    where false answers first fall to or below 0.05, 0.10, 0.15, 0.20, 0.30 and 0.40. The
    threshold is halfway (in logits) between the cut-off score and the next lower one."""
    out = sorted(score for row, score in zip(rows, scores, strict=True) if not row["answerable"])
    ins = [score for row, score in zip(rows, scores, strict=True) if row["answerable"]]
    ordered = sorted(set(scores))
    points = []
    for goal in (0.05, 0.10, 0.15, 0.20, 0.30, 0.40):
        for position, threshold in enumerate([*ordered, 1e9]):
            false_answers = sum(score >= threshold for score in out) / len(out)
            if false_answers <= goal:
                lower = ordered[position - 1] if position else threshold - 1.0
                middle = (threshold + lower) / 2 if threshold < 1e8 else lower + 1.0
                setting = 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, middle))))
                points.append((false_answers, sum(score < threshold for score in ins) / len(ins), setting))
                break
    return points


def fit(rows: list[dict], l2: float) -> dict:
    import numpy

    from chat.grounding import GATE_SIGNALS

    usable = [row for row in rows if row["signals"] is not None]
    features = numpy.array([[row["signals"][name] for name in GATE_SIGNALS] for row in usable])
    labels = numpy.array([1.0 if row["answerable"] else 0.0 for row in usable])
    mean, scale = features.mean(axis=0), features.std(axis=0) + 1e-9
    weights, bias = _raw_params(_logistic((features - mean) / scale, labels, l2), mean, scale)
    return {"weights": weights, "bias": bias}


def cross_validate(rows: list[dict], l2: float) -> tuple[float, float]:
    """Leave one knowledge base out: (false-answer, false-refusal) rate over all dev questions,
    each scored by a model fitted on the other knowledge bases at that model's own best cut-off."""
    false_answers = false_refusals = 0
    for held in sorted({row["kb"] for row in rows}):
        train = [row for row in rows if row["kb"] != held]
        params = fit(train, l2)
        threshold, _fa, _fr = cut_off(train, question_scores(train, params))
        tested = [row for row in rows if row["kb"] == held]
        for row, score in zip(tested, question_scores(tested, params), strict=True):
            if row["answerable"] and score < threshold:
                false_refusals += 1
            elif not row["answerable"] and score >= threshold:
                false_answers += 1
    out = sum(not row["answerable"] for row in rows)
    return false_answers / out, false_refusals / (len(rows) - out)


def fit_command() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--embedder", default="default", help="the organizations' knowledge embedder")
    arguments = parser.parse_args()
    _setup()
    from chat import grounding
    from knowledge.embeddings import embedder_get

    embedder = embedder_get(choice=arguments.embedder)
    FLOOR["cosine_floor"] = grounding.gate_parameters(embedder)["cosine_floor"]
    rows = examples_collect(choice=arguments.embedder)
    print(f"dev questions: {len(rows)} ({sum(not row['answerable'] for row in rows)} out of scope)")
    results = {l2: cross_validate(rows, l2) for l2 in L2_CHOICES}
    for l2, (false_answers, false_refusals) in results.items():
        print(
            f"  λ={l2:>5}: leave-one-KB-out false answers {false_answers:.3f}, false refusals {false_refusals:.3f}"
        )
    l2 = min(results, key=lambda choice: (sum(results[choice]), results[choice][0]))
    params = fit(rows, l2)
    threshold, false_answers, false_refusals = cut_off(rows, question_scores(rows, params))
    params["bias"] -= threshold if threshold < 1e8 else 0.0
    print("dev trade-off, moving only the cut-off (false answers / false refusals, in-sample):")
    for point_answers, point_refusals, setting in frontier(rows, question_scores(rows, params)):
        print(f"  {point_answers:.3f} / {point_refusals:.3f}  (CHAT_RELEVANCE_THRESHOLD={setting:.4f})")
    print(
        f"chosen λ={l2}; dev (in-sample) at the cut-off: false answers {false_answers:.3f}, false refusals {false_refusals:.3f}"
    )
    entry = {
        "weights": {key: round(value, 3) for key, value in params["weights"].items()},
        "bias": round(params["bias"], 3),
        "cosine_floor": FLOOR["cosine_floor"],
    }
    print(f"GATE_BY_EMBEDDER[{embedder.name!r}] = {json.dumps(entry, indent=4)}")
    name = embedder.name
    return {"embedder": name, "l2": l2, "params": entry, "cross_validated": results}


if __name__ == "__main__":
    fit_command()
