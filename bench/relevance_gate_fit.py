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
Each weight has a sign (`SIGNS`): ≥ 0 for what should only ever help a candidate (`full`,
`lexical`, the margins, the unknown words' closeness to it), ≤ 0 for `drop_gain`. Kept simple:
an active set (`_logistic`): a weight that comes out with the wrong sign is fixed at 0 (the
signal is dropped) and the rest refitted, until every sign holds; a dropped signal whose
gradient then points the allowed way is let back once. Without the signs the fit gave `lexical`
a negative weight (on this dev set near-miss questions share more words with an entry than its
paraphrases do) and leaned on the margins, which are large in any small knowledge base: "Do you
sell submarines?" was answered from a four-pair one.
λ was chosen by leave-one-knowledge-base-out cross-validation on the dev split (printed: the
false-answer and false-refusal rates of each held-out knowledge base's questions under a
model fitted on the other two, at each fold's own best cut-off). Then the bias is shifted so
that relevance 0.5 is the cut-off that minimises false answers + false refusals on the dev
split, with the embedder's cosine floor (in force: value and `floor_on`, or `--floor-on`)
applied as the product applies it. The floor's value is kept (it guards small knowledge bases,
which the dev split has none of); the script also prints what each floor would cost on dev, and
`--choose-floor` takes the cross-validated one instead.
`--cross-language` (what made the multilingual embedder's entry, then without the signs) adds the
shop's dev questions written in Spanish and German and chooses the signal set with λ
(`cross_language_fit`). This is the one fit script: the per-candidate four-signal fit that was
`bench/gate_fit.py` (a model of "is this the right entry" rather than "is this question
answerable") is gone; its cross-language fit lives here.

Run: `.venv/bin/python bench/relevance_gate_fit.py [--embedder default|multilingual]
[--cross-language] [--rows FILE]` (`--rows`: the collected dev examples, read if the file exists, else written);
paste the printed entry into `GATE_BY_EMBEDDER` in chat/grounding.py. MiniLM's fit leaves
`other_language` out (English knowledge and questions: it would only learn language detection's
misses on short questions).
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
# The cosine floor (never relevant below it): its value and the cosine it applies to (`cosine` =
# max(key, full), or `full`: the candidate's own text), the entry in force's unless overridden.
FLOOR = {"cosine_floor": 0.0, "floor_on": "cosine"}
FLOOR_CHOICES = [step / 100 for step in range(0, 41)]
# The sign each signal's weight may take (+1: ≥ 0, -1: ≤ 0; absent: free). What should only ever
# help a candidate (closeness to it, word coverage, margins over the others, unknown words that
# are close to it) must never lower its relevance, and the gain from leaving an unknown word out
# must never raise it. An unconstrained fit on ~300 dev questions gave lexical a negative weight
# (more of the question's words covered = less relevant), an artefact that answered "Do you sell
# submarines?" from a four-pair knowledge base. `other_language` is free: across languages
# cosines run lower, and the multilingual fit uses it to lift them.
SIGNS = {
    "full": 1,
    "lexical": 1,
    "key_margin": 1,
    "full_margin": 1,
    "drop_gain": -1,
    "unknown_word_min": 1,
    "unknown_word_mean": 1,
}


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


def _newton(design, labels, penalty):
    """Weights of an L2-penalised logistic regression on `design`'s columns, by Newton's method."""
    import numpy

    weights = numpy.zeros(design.shape[1])
    for _ in range(100):
        probability = 1 / (1 + numpy.exp(-design @ weights))
        gradient = design.T @ (probability - labels) + penalty @ weights
        hessian = (design * (probability * (1 - probability))[:, None]).T @ design + penalty
        step = numpy.linalg.solve(hessian, gradient)
        weights -= step
        if numpy.abs(step).max() < 1e-10:
            break
    return weights


def _logistic(features, labels, l2: float, signs=None):
    """Weights (last = intercept) of an L2-penalised logistic regression whose weight j has the
    sign `signs[j]` (+1: ≥ 0, -1: ≤ 0, 0: free), by an active set: fit the free signals; while a
    weight has the wrong sign, fix the worst one at 0 and refit; then let back a fixed signal
    whose gradient at 0 points the allowed way (the conditions for the constrained optimum), and
    repeat. Standardising features does not change signs, so the signs hold on raw signals."""
    import numpy

    count = features.shape[1]
    signs = numpy.zeros(count) if signs is None else numpy.asarray(signs, dtype=float)
    design = numpy.hstack([features, numpy.ones((len(features), 1))])
    active = list(range(count + 1))  # the intercept is never fixed
    readmitted: set[int] = set()  # a signal is let back once (no cycling)
    weights = numpy.zeros(count + 1)
    for _ in range(4 * count + 4):
        weights = numpy.zeros(count + 1)
        columns = design[:, active]
        penalty = numpy.diag([0.0 if index == count else l2 for index in active])
        weights[active] = _newton(columns, labels, penalty)
        wrong = [index for index in active if index < count and signs[index] * weights[index] < 0]
        if wrong:
            active.remove(max(wrong, key=lambda index: abs(weights[index])))
            continue
        probability = 1 / (1 + numpy.exp(-design @ weights))
        descent = -(design.T @ (probability - labels))  # where each weight would lower the loss
        wanting = [
            index
            for index in range(count)
            if index not in active and index not in readmitted and signs[index] * descent[index] > 1e-9
        ]
        if not wanting:
            break
        readmitted.add(best := max(wanting, key=lambda index: signs[index] * descent[index]))
        active.append(best)
        active.sort()
    return weights


def _raw_params(weights, mean, scale, signals) -> tuple[dict, float]:
    """Standardised-feature weights as weights on the raw signals (a signal fixed at 0 left out)."""
    raw = weights[:-1] / scale
    bias = float(weights[-1] - (raw * mean).sum())
    return {name: float(value) for name, value in zip(signals, raw, strict=True) if value}, bias


def question_scores(rows: list[dict], params: dict) -> list[float]:
    """Each question's best candidate relevance logit under `params`, the cosine floor applied."""
    scores = []
    for row in rows:
        best = -1e9
        for signals in row["all"]:
            z = params["bias"] + sum(weight * signals[name] for name, weight in params["weights"].items())
            if signals[FLOOR["floor_on"]] < FLOOR["cosine_floor"]:
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


def fit(rows: list[dict], l2: float, *, signals: tuple[str, ...] | None = None, signed: bool = True) -> dict:
    """Weights and bias on `signals` (default: every one of GATE_SIGNALS), each weight with its
    sign in SIGNS when `signed`."""
    import numpy

    from chat.grounding import GATE_SIGNALS

    signals = tuple(signals or GATE_SIGNALS)
    usable = [row for row in rows if row["signals"] is not None]
    features = numpy.array([[row["signals"][name] for name in signals] for row in usable])
    labels = numpy.array([1.0 if row["answerable"] else 0.0 for row in usable])
    mean, scale = features.mean(axis=0), features.std(axis=0) + 1e-9
    signs = [SIGNS.get(name, 0) if signed else 0 for name in signals]
    weights = _logistic((features - mean) / scale, labels, l2, signs)
    weights, bias = _raw_params(weights, mean, scale, signals)
    return {"weights": weights, "bias": bias}


def cross_validate(rows: list[dict], l2: float, **options) -> tuple[float, float]:
    """Leave one knowledge base out: (false-answer, false-refusal) rate over all dev questions,
    each scored by a model fitted on the other knowledge bases at that model's own best cut-off."""
    false_answers = false_refusals = 0
    for held in sorted({row["kb"] for row in rows}):
        train = [row for row in rows if row["kb"] != held]
        params = fit(train, l2, **options)
        threshold, _fa, _fr = cut_off(train, question_scores(train, params))
        tested = [row for row in rows if row["kb"] == held]
        for row, score in zip(tested, question_scores(tested, params), strict=True):
            if row["answerable"] and score < threshold:
                false_refusals += 1
            elif not row["answerable"] and score >= threshold:
                false_answers += 1
    out = sum(not row["answerable"] for row in rows)
    return false_answers / out, false_refusals / (len(rows) - out)


def choose(rows: list[dict], *, floors, signals=None) -> tuple[float, float, dict]:
    """(floor, λ, {(floor, λ): cross-validated rates}): the pair with the fewest leave-one-KB-out
    false answers + false refusals (then fewer false answers, then the HIGHER floor: the dev
    knowledge bases are large, and the floor is what guards a small one, whose entries are all
    far from each other so that every candidate has a large margin)."""
    results = {}
    for floor in floors:
        FLOOR["cosine_floor"] = floor
        for l2 in L2_CHOICES:
            results[(floor, l2)] = cross_validate(rows, l2, signals=signals)
    floor, l2 = min(results, key=lambda key: (sum(results[key]), results[key][0], -key[0]))
    FLOOR["cosine_floor"] = floor
    return floor, l2, results


TRANSLATED = Path(__file__).resolve().parent / "data" / "support_kbs_translated.json"


def translated_collect(*, choice: str) -> list[dict]:
    """`examples_collect`'s rows for the translated shop dev questions (kb "shop", each row with
    its `language`)."""
    from assistants.models import Assistant
    from chat import grounding
    from organizations.services import organization_create
    from testkit.answer_quality import knowledge_build

    translated = json.loads(TRANSLATED.read_text())
    data = json.loads(DATA.read_text())
    knowledge_base = next(kb for kb in data["knowledge_bases"] if kb["id"] == translated["knowledge_base"])
    stamp = uuid.uuid4().hex[:8]
    organization = organization_create(
        name=f"gate fit translated {stamp}", slug=f"bench-gate-fit-tr-{stamp}",
        owner_email=f"gate-fit-tr-{stamp}@example.com", owner_password=uuid.uuid4().hex,
    )  # fmt: skip
    rows = []
    try:
        organization.knowledge_embedder = choice
        organization.save(update_fields=["knowledge_embedder"])
        assistant = Assistant.objects.create(organization=organization, name=knowledge_base["name"][:100])
        knowledge_build(organization=organization, data=knowledge_base)
        for item in translated["questions"]:
            for language in ("es", "de"):
                candidates = grounding.knowledge_search(
                    organization=organization, assistant=assistant, query=item[language]
                )
                signals = (
                    grounding.candidate_signals(
                        question=item[language],
                        candidates=candidates,
                        organization=organization,
                        parameters=_every_signal(),
                    )
                    or []
                )
                closest = max(signals, key=lambda row: max(row["key"], row["full"]), default=None)
                rows.append(
                    {
                        "kb": knowledge_base["id"],
                        "answerable": item["kind"] != "unanswerable",
                        "signals": closest,
                        "all": signals,
                        "language": language,
                    }
                )
    finally:
        organization.delete()
    return rows


def cross_language_fit(*, choice: str, in_force: dict, embedder_name: str) -> dict:
    """`--cross-language`: the fit on the English dev questions *plus* the shop's dev questions
    written in Spanish and German (`bench/data/support_kbs_translated.json`, dev only; in the
    shop's fold of the cross-validation). The multilingual embedder exists for questions in
    another language than the knowledge, and a gate fitted on English questions alone refused
    most of them. The signal set (all, or the first four and `other_language`: the unknown-word
    signals count every word of a Spanish question as unknown to English knowledge) and λ are
    chosen together by that cross-validation; the floor in force is kept."""
    from chat import grounding

    FLOOR["cosine_floor"] = in_force["cosine_floor"]
    english = examples_collect(choice=choice)
    translated = translated_collect(choice=choice)
    rows = english + translated
    every = grounding.GATE_SIGNALS
    sets = {len(every): every, 5: (*every[:4], "other_language")}
    results = {}
    for count, signals in sets.items():
        for l2 in L2_CHOICES:
            results[(count, l2)] = cross_validate(rows, l2, signals=signals)
            print(f"  {count} signals, λ={l2:>5}: leave-one-KB-out false answers / refusals "
                  f"{results[(count, l2)][0]:.3f} / {results[(count, l2)][1]:.3f}")  # fmt: skip
    count, l2 = min(results, key=lambda key: (sum(results[key]), results[key][0]))
    params = fit(rows, l2, signals=sets[count])
    threshold, false_answers, false_refusals = cut_off(rows, question_scores(rows, params))
    params["bias"] -= threshold if threshold < 1e8 else 0.0
    for label, parameters in (("fitted", params), ("in force", in_force)):
        for name, part in (("English dev", english), ("es/de dev", translated)):
            scores = question_scores(part, parameters)
            out = [score for row, score in zip(part, scores, strict=True) if not row["answerable"]]
            ins = [score for row, score in zip(part, scores, strict=True) if row["answerable"]]
            print(f"  {label}, {name}: false answers {sum(x >= 0 for x in out) / len(out):.3f}, "
                  f"false refusals {sum(x < 0 for x in ins) / len(ins):.3f}")  # fmt: skip
    print(f"chosen: {count} signals, λ={l2}; dev (in-sample) false answers {false_answers:.3f}, "
          f"false refusals {false_refusals:.3f}")  # fmt: skip
    entry = {
        "weights": {key: round(value, 3) for key, value in params["weights"].items()},
        "bias": round(params["bias"], 3),
        "cosine_floor": FLOOR["cosine_floor"],
    }
    if FLOOR["floor_on"] != "cosine":
        entry["floor_on"] = FLOOR["floor_on"]
    print(f"GATE_BY_EMBEDDER[{embedder_name!r}] = {json.dumps(entry, indent=4)}")
    return {"embedder": embedder_name, "l2": l2, "params": entry}


def fit_command() -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--embedder", default="default", help="the organizations' knowledge embedder")
    parser.add_argument("--floor-on", choices=("full", "cosine"), help="default: the entry in force's")
    parser.add_argument(
        "--choose-floor",
        action="store_true",
        help="choose the floor's value with λ by cross-validation (default: keep the entry in force's)",
    )
    parser.add_argument("--rows", help="a JSON file of collected dev rows: read if it exists, else written")
    parser.add_argument(
        "--cross-language", action="store_true", help="add translated dev questions (`cross_language_fit`)"
    )
    arguments = parser.parse_args()
    _setup()
    from chat import grounding
    from knowledge.embeddings import embedder_get

    embedder = embedder_get(choice=arguments.embedder)
    in_force = grounding.gate_parameters(embedder)
    FLOOR["floor_on"] = arguments.floor_on or in_force.get("floor_on", "cosine")
    if arguments.cross_language:
        return cross_language_fit(choice=arguments.embedder, in_force=in_force, embedder_name=embedder.name)
    path = Path(arguments.rows) if arguments.rows else None
    if path and path.exists():
        rows = json.loads(path.read_text())
    else:
        rows = examples_collect(choice=arguments.embedder)
        if path:
            path.write_text(json.dumps(rows))
    # MiniLM's knowledge and dev questions are English: `other_language` only flags language
    # detection's misses on short questions there, so MiniLM's fit leaves it out.
    signals = tuple(
        name for name in grounding.GATE_SIGNALS if arguments.embedder != "default" or name != "other_language"
    )
    print(f"dev questions: {len(rows)} ({sum(not row['answerable'] for row in rows)} out of scope)")
    # The dev split alone, floor and λ chosen together (printed: what each floor would cost).
    cv_floor, cv_l2, grid = choose(rows, floors=FLOOR_CHOICES, signals=signals)
    print(f"best λ at each floor on {FLOOR['floor_on']} (leave-one-KB-out false answers / refusals):")
    for floor in FLOOR_CHOICES:
        l2 = min(L2_CHOICES, key=lambda choice: (sum(grid[(floor, choice)]), grid[(floor, choice)][0]))
        print(f"  {floor:.2f}: λ={l2:>5}, {grid[(floor, l2)][0]:.3f} / {grid[(floor, l2)][1]:.3f}")
    floors = FLOOR_CHOICES if arguments.choose_floor else [in_force["cosine_floor"]]
    floor, l2, results = choose(rows, floors=floors, signals=signals)
    for (_floor, each_l2), (false_answers, false_refusals) in results.items():
        if _floor == floor:
            print(f"  floor {floor:.2f}, λ={each_l2:>5}: leave-one-KB-out false answers "
                  f"{false_answers:.3f}, false refusals {false_refusals:.3f}")  # fmt: skip
    params = fit(rows, l2, signals=signals)
    threshold, false_answers, false_refusals = cut_off(rows, question_scores(rows, params))
    params["bias"] -= threshold if threshold < 1e8 else 0.0
    print("dev trade-off, moving only the cut-off (false answers / false refusals, in-sample):")
    for point_answers, point_refusals, setting in frontier(rows, question_scores(rows, params)):
        print(f"  {point_answers:.3f} / {point_refusals:.3f}  (CHAT_RELEVANCE_THRESHOLD={setting:.4f})")
    print(
        f"chosen floor {floor} on {FLOOR['floor_on']}, λ={l2}; leave-one-KB-out {results[(floor, l2)][0]:.3f} / "
        f"{results[(floor, l2)][1]:.3f}; dev (in-sample) at the cut-off: false answers {false_answers:.3f}, "
        f"false refusals {false_refusals:.3f}"
    )
    entry = {
        "weights": {key: round(value, 3) for key, value in params["weights"].items()},
        "bias": round(params["bias"], 3),
        "cosine_floor": floor,
        "floor_on": FLOOR["floor_on"],
    }
    print(f"GATE_BY_EMBEDDER[{embedder.name!r}] = {json.dumps(entry, indent=4)}")
    name = embedder.name
    return {"embedder": name, "l2": l2, "params": entry, "cross_validated": results}


if __name__ == "__main__":
    fit_command()
