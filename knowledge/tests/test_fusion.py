"""rank_fuse: the arithmetic of both fusion forms, candidates one list lacks, empty lists, ties."""

from __future__ import annotations

import random

import pytest

from knowledge.retrieval import Fusion, rank_fuse

RANK = Fusion(method="rank", k=60, lexical_weight=1.0)


def _order(fused):
    return [chunk_id for chunk_id, _score in fused]


# --- reciprocal rank ------------------------------------------------------------------------
def test_rank_sums_reciprocal_ranks_counting_a_missing_candidate_just_below_the_list():
    lexical = [("a", 9.0), ("b", 5.0), ("c", 1.0)]
    vector = [("c", 0.9), ("d", 0.8)]
    fused = dict(rank_fuse(lexical, vector, fusion=RANK))
    assert fused["c"] == pytest.approx(1 / 63 + 1 / 61)
    assert fused["a"] == pytest.approx(1 / 61 + 1 / 63)  # not in the two-item vector list: rank 3
    assert fused["b"] == pytest.approx(1 / 62 + 1 / 63)
    assert fused["d"] == pytest.approx(1 / 64 + 1 / 62)  # not in the three-item lexical list: rank 4
    assert _order(rank_fuse(lexical, vector, fusion=RANK)) == ["a", "c", "b", "d"]


def test_rank_weights_the_lexical_reciprocal_ranks_only():
    lexical = [("a", 9.0), ("b", 5.0)]
    vector = [("b", 0.9), ("a", 0.8)]
    fused = dict(rank_fuse(lexical, vector, fusion=Fusion(method="rank", k=10, lexical_weight=2.0)))
    assert fused["a"] == pytest.approx(2 / 11 + 1 / 12)
    assert fused["b"] == pytest.approx(2 / 12 + 1 / 11)
    assert fused["a"] > fused["b"]  # unweighted they tie; the lexical vote decides
    halved = dict(rank_fuse(lexical, vector, fusion=Fusion(method="rank", k=10, lexical_weight=0.5)))
    assert halved["b"] > halved["a"]


def test_rank_does_not_reward_merely_being_in_both_lists():
    # Only "a" shares a word with the query; the vector retriever puts "b" first and "a" third.
    # Counted as absent, "b" would lose to "a" (1/61 + 1/63 against 1/61); at the rank just
    # below the lexical list it wins.
    lexical = [("a", 4.2)]
    vector = [("b", 0.91), ("c", 0.90), ("a", 0.60)]
    assert _order(rank_fuse(lexical, vector, fusion=RANK)) == ["b", "a", "c"]


# --- score combination ----------------------------------------------------------------------
def test_score_minmax_is_a_convex_combination_with_missing_at_the_lists_lowest():
    lexical = [("a", 10.0), ("b", 6.0), ("c", 2.0)]  # normalised 1, 0.5, 0
    vector = [("b", 0.8), ("d", 0.6), ("e", 0.4)]  # normalised 1, 0.5, 0
    fusion = Fusion(method="score", normalise="minmax", lexical_weight=0.3)
    fused = dict(rank_fuse(lexical, vector, fusion=fusion))
    assert fused["a"] == pytest.approx(0.3 * 1.0 + 0.7 * 0.0)  # not in the vector list: its lowest
    assert fused["b"] == pytest.approx(0.3 * 0.5 + 0.7 * 1.0)
    assert fused["c"] == pytest.approx(0.0)
    assert fused["d"] == pytest.approx(0.3 * 0.0 + 0.7 * 0.5)
    assert fused["e"] == pytest.approx(0.0)
    assert _order(rank_fuse(lexical, vector, fusion=fusion))[:3] == ["b", "d", "a"]


def test_score_zscore_and_max_normalisations():
    lexical = [("a", 3.0), ("b", 1.0)]  # mean 2, population stdev 1: +1, -1
    vector = [("a", 0.5), ("b", 0.25)]  # / max: 1, 0.5
    z = dict(
        rank_fuse(lexical, vector, fusion=Fusion(method="score", normalise="zscore", lexical_weight=0.5))
    )
    assert z["a"] == pytest.approx(0.5 * 1.0 + 0.5 * 1.0)  # vector z-scores are +1, -1 too
    assert z["b"] == pytest.approx(0.5 * -1.0 + 0.5 * -1.0)
    top = dict(
        rank_fuse(lexical, vector, fusion=Fusion(method="score", normalise="max", lexical_weight=0.25))
    )
    assert top["a"] == pytest.approx(0.25 * 1.0 + 0.75 * 1.0)
    assert top["b"] == pytest.approx(0.25 * (1 / 3) + 0.75 * 0.5)


def test_score_a_missing_candidate_gets_the_lists_lowest_normalised_score_not_zero():
    lexical = [("a", 4.0), ("b", 2.0)]  # z: +1, -1; / max: 1, 0.5
    vector = [("c", 0.9), ("a", 0.3)]
    z = dict(
        rank_fuse(lexical, vector, fusion=Fusion(method="score", normalise="zscore", lexical_weight=0.5))
    )
    assert z["c"] == pytest.approx(0.5 * -1.0 + 0.5 * 1.0)  # lexical's lowest z, not 0
    assert z["b"] == pytest.approx(0.5 * -1.0 + 0.5 * -1.0)
    top = dict(rank_fuse(lexical, vector, fusion=Fusion(method="score", normalise="max", lexical_weight=0.5)))
    assert top["c"] == pytest.approx(0.5 * 0.5 + 0.5 * 1.0)
    assert top["b"] == pytest.approx(0.5 * 0.5 + 0.5 * (0.3 / 0.9))


def test_score_statistics_come_from_the_window_so_a_deeper_list_fuses_its_top_alike():
    lexical = [("a", 10.0), ("b", 6.0), ("c", 2.0), ("d", 1.0)]
    vector = [("b", 0.9), ("a", 0.5)]
    fusion = Fusion(method="score", normalise="minmax", lexical_weight=0.5, window=3)
    fused = dict(rank_fuse(lexical, vector, fusion=fusion))
    # min-max over the first three lexical scores (2..10): "d" normalises below 0.
    assert fused["d"] == pytest.approx(0.5 * (1.0 - 2.0) / 8 + 0.5 * 0.0)
    assert fused["b"] == pytest.approx(0.5 * 0.5 + 0.5 * 1.0)
    shallow = dict(rank_fuse(lexical[:3], vector, fusion=fusion))
    assert shallow["a"] == pytest.approx(fused["a"]) and shallow["b"] == pytest.approx(fused["b"])


def test_fusion_rejects_unknown_forms_and_shares_outside_zero_to_one():
    with pytest.raises(ValueError):
        Fusion(method="borda")
    with pytest.raises(ValueError):
        Fusion(method="score", normalise="softmax")
    with pytest.raises(ValueError):
        Fusion(method="score", lexical_weight=1.5)


# --- every form: empty lists, ties, determinism ------------------------------------------------
FORMS = [
    RANK,
    Fusion(method="rank", k=10, lexical_weight=1.5),
    Fusion(method="score", normalise="minmax", lexical_weight=0.5),
    Fusion(method="score", normalise="zscore", lexical_weight=0.6),
    Fusion(method="score", normalise="max", lexical_weight=0.4),
]


@pytest.mark.parametrize("fusion", FORMS, ids=lambda fusion: fusion.label())
def test_one_empty_ranking_keeps_the_other_lists_order(fusion):
    ranking = [("q", 0.9), ("a", 0.7), ("z", 0.3)]
    assert rank_fuse([], [], fusion=fusion) == []
    assert _order(rank_fuse(ranking, [], fusion=fusion)) == ["q", "a", "z"]
    assert _order(rank_fuse([], ranking, fusion=fusion)) == ["q", "a", "z"]


@pytest.mark.parametrize("fusion", FORMS, ids=lambda fusion: fusion.label())
def test_equal_scores_never_divide_by_zero_and_fall_back_to_the_id(fusion):
    # One candidate each: every normalisation of a one-entry list is flat. Only a lexical
    # weight other than 1 in the rank form separates "b" (lexical 1st) from "a" (vector 1st).
    expected = ["b", "a"] if fusion.method == "rank" and fusion.lexical_weight > 1 else ["a", "b"]
    assert _order(rank_fuse([("b", 1.0)], [("a", 1.0)], fusion=fusion)) == expected
    # Equal scores within a list: ranks still differ, normalised scores do not.
    flat = [("x", 2.0), ("y", 2.0), ("w", 2.0)]
    expected = ["x", "y", "w"] if fusion.method == "rank" else ["w", "x", "y"]
    assert _order(rank_fuse(flat, [], fusion=fusion)) == expected


def test_equal_rank_sums_go_to_the_retrievers_confidence_whichever_list_comes_first():
    # "z" and "a" are 1st and 3rd in one list and 3rd and 1st in the other: equal sums.
    # "z" leads its lexical list by a wide margin; "a" barely leads the vector one.
    lexical = [("z", 10.0), ("m", 2.0), ("a", 1.5), ("q", 1.0)]
    vector = [("a", 0.80), ("m", 0.79), ("z", 0.78), ("q", 0.50)]
    fused = rank_fuse(lexical, vector, fusion=RANK)
    assert fused[0][1] == fused[1][1]
    assert _order(fused[:2]) == ["z", "a"]
    assert rank_fuse(vector, lexical, fusion=RANK)[:2] == fused[:2]


@pytest.mark.parametrize("fusion", FORMS, ids=lambda fusion: fusion.label())
def test_the_order_is_a_function_of_the_lists_alone(fusion):
    generator = random.Random(7)
    lexical = [(f"c{n}", float(generator.choice([1, 2, 3]))) for n in range(40)]
    lexical.sort(key=lambda item: -item[1])
    vector = [(f"c{n}", round(generator.random(), 1)) for n in range(20, 70)]
    vector.sort(key=lambda item: -item[1])
    first = rank_fuse(lexical, vector, fusion=fusion)
    assert len(first) == 70 and len(set(_order(first))) == 70
    for _ in range(5):  # same lists, candidates discovered in another order: same result
        assert rank_fuse(list(lexical), list(vector), fusion=fusion) == first
    scores = [score for _chunk_id, score in first]
    assert scores == sorted(scores, reverse=True)


def test_a_vector_led_candidates_lexical_vote_is_the_better_of_its_own_and_its_vector_one():
    lexical = [("doc", 8.0), ("other", 4.0), ("qa", 0.0)]  # min-max: 1, 0.5, 0
    vector = [("qa", 0.9), ("other", 0.5), ("doc", 0.1)]  # min-max: 1, 0.5, 0
    fusion = Fusion(method="score", normalise="minmax", lexical_weight=0.6)
    plain = dict(rank_fuse(lexical, vector, fusion=fusion))
    assert plain["qa"] == pytest.approx(0.6 * 0.0 + 0.4 * 1.0)
    led = dict(rank_fuse(lexical, vector, fusion=fusion, vector_led={"qa"}))
    assert led["qa"] == pytest.approx(0.6 * 1.0 + 0.4 * 1.0)
    assert led["doc"] == pytest.approx(plain["doc"]) == pytest.approx(0.6)  # others fused as before
    # A pair that is lexically better than semantically keeps its lexical vote.
    words = [("qa", 8.0), ("doc", 4.0), ("other", 0.0)]
    meaning = [("doc", 0.9), ("other", 0.5), ("qa", 0.1)]
    kept = dict(rank_fuse(words, meaning, fusion=fusion, vector_led={"qa"}))
    assert kept["qa"] == pytest.approx(0.6 * 1.0 + 0.4 * 0.0)
    weighted = dict(
        rank_fuse(
            [("doc", 5.0)],
            [("qa", 0.8), ("doc", 0.6)],
            fusion=Fusion(method="rank", k=10, lexical_weight=2.0),
            vector_led={"qa"},
        )
    )
    assert weighted["qa"] == pytest.approx(2 / 11 + 1 / 11)  # lexical vote at its vector rank, weighted
    assert weighted["doc"] == pytest.approx(2 / 11 + 1 / 12)
    assert rank_fuse(lexical, [], fusion=fusion, vector_led={"qa"}) == rank_fuse(lexical, [], fusion=fusion)


# --- per embedder ---------------------------------------------------------------------------
def test_a_vector_floor_divides_each_cosines_height_above_it_by_the_best_ones():
    fusion = Fusion(method="score", normalise="max", lexical_weight=0.25, vector_floor=0.7)
    fused = dict(rank_fuse([("a", 2.0), ("b", 1.0)], [("b", 0.9), ("a", 0.8), ("c", 0.6)], fusion=fusion))
    assert fused["b"] == pytest.approx(0.25 * 0.5 + 0.75 * 1.0)
    assert fused["a"] == pytest.approx(0.25 * 1.0 + 0.75 * 0.5)  # (0.8 - 0.7) / (0.9 - 0.7)
    assert fused["c"] == pytest.approx(0.25 * 0.5 + 0.0)  # below the floor: no vector vote
    assert fusion.label() == "score max lexical 0.25 vector floor 0.7 (window 50)"
    with pytest.raises(ValueError, match="vector_floor"):
        Fusion(method="rank", vector_floor=0.7)
    with pytest.raises(ValueError, match="vector_floor"):
        Fusion(method="score", normalise="max", lexical_weight=0.5, vector_floor=1.0)


def test_each_embedder_fuses_with_its_own_fusion_and_minilm_with_the_cross_validated_one():
    from knowledge.embeddings import LOCAL_MODEL_NAME, MULTILINGUAL_MODEL_NAME
    from knowledge.retrieval import FUSION, FUSION_BY_EMBEDDER, fusion_for

    assert fusion_for(LOCAL_MODEL_NAME) is FUSION
    assert FUSION == Fusion(method="score", normalise="max", lexical_weight=0.55)  # MiniLM's, unchanged
    assert fusion_for("openai/text-embedding-3-small") is FUSION  # a provider's model: no entry
    e5 = fusion_for(MULTILINGUAL_MODEL_NAME)
    assert e5 is FUSION_BY_EMBEDDER[MULTILINGUAL_MODEL_NAME] and e5 != FUSION
    # e5-like cosines (all between 0.8 and 0.9) that clearly prefer "returns", and one weak
    # word in common with "changes": MiniLM's fusion hands the lexical side the decision (each
    # cosine over the best is ~0.95-1), e5's lets the cosines decide.
    lexical = [("changes", 0.2), ("returns", 0.11), ("payment", 0.11)]
    vector = [("returns", 0.88), ("changes", 0.84), ("payment", 0.82)]
    assert _order(rank_fuse(lexical, vector, fusion=FUSION))[0] == "changes"
    assert _order(rank_fuse(lexical, vector, fusion=e5))[0] == "returns"
