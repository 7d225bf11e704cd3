"""The local embedder under gunicorn's threads: concurrent callers share forward passes
(`EncodeQueue`), and every caller still gets exactly its own vectors."""

from __future__ import annotations

import threading
import time

import pytest

from knowledge.embeddings import EncodeQueue, embedder_get


def _concurrently(count: int, call) -> list:
    results: list = [None] * count
    start = threading.Barrier(count)

    def run(index: int) -> None:
        start.wait()
        try:
            results[index] = call(index)
        except Exception as error:  # noqa: BLE001 - handed back to the test
            results[index] = error

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def test_concurrent_callers_are_encoded_together_and_get_their_own_vectors():
    batches: list[list[str]] = []

    def encode(texts: list[str]) -> list[list[float]]:
        batches.append(list(texts))
        time.sleep(0.05)  # a forward pass takes a while; others queue up meanwhile
        return [[float(len(text))] for text in texts]

    queue = EncodeQueue(max_texts=32)
    results = _concurrently(12, lambda index: queue.run(["x" * index, "y" * (index + 100)], encode))
    assert results == [[[float(index)], [float(index + 100)]] for index in range(12)]
    assert sum(len(batch) for batch in batches) == 24
    assert len(batches) < 12  # shared forward passes, not one per caller


def test_a_failed_pass_fails_each_of_its_callers_and_the_queue_goes_on():
    calls = {"count": 0}

    def encode(texts: list[str]) -> list[list[float]]:
        calls["count"] += 1
        if calls["count"] == 1:
            time.sleep(0.05)
            raise RuntimeError("model failure")
        return [[1.0] for _ in texts]

    queue = EncodeQueue()
    results = _concurrently(4, lambda index: queue.run([f"text {index}"], encode))
    assert any(isinstance(result, RuntimeError) for result in results)
    assert queue.run(["after"], encode) == [[1.0]]


def test_a_request_larger_than_a_batch_is_encoded_alone():
    queue = EncodeQueue(max_texts=4)
    assert (
        queue.run([str(number) for number in range(10)], lambda texts: [[1.0]] * len(texts)) == [[1.0]] * 10
    )


@pytest.mark.parametrize("count", [6])
def test_the_local_model_gives_the_same_vectors_batched_or_alone(count):
    embedder = embedder_get()
    questions = [f"How do I reset my password? ({index})" * (1 + index % 3) for index in range(count)]
    alone = [embedder.embed([question])[0] for question in questions]
    together = _concurrently(count, lambda index: embedder.embed([questions[index]])[0])
    for single, batched in zip(alone, together, strict=True):
        assert max(abs(a - b) for a, b in zip(single, batched, strict=True)) < 1e-4
