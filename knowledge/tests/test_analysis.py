"""Stemming from many threads at once, as a web process's threads do on concurrent turns."""

from __future__ import annotations

import sys
import threading

import snowballstemmer

from knowledge import analysis


def test_stemming_from_many_threads_at_once_gives_the_single_threaded_stems():
    words = [
        f"{stem}{suffix}"
        for stem in ("connect", "generaliz", "happi", "runn", "nation")
        for suffix in ("", "s", "ing", "ed", "ation", "ational", "ousness", "ively", "ement", "ies")
    ]
    words = [f"{word}{'x' * (index % 7)}{word}" for index, word in enumerate(words * 40)]
    reference = snowballstemmer.stemmer("english")
    expected = {word: reference.stemWord(word) for word in words}
    failures: list[BaseException] = []
    results: list[dict[str, str]] = []

    def stem_all() -> None:
        try:
            results.append({word: analysis.stem.__wrapped__(word) for word in words})
        except BaseException as error:  # noqa: BLE001  (reported below, with the thread's error)
            failures.append(error)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: races show at once
    try:
        threads = [threading.Thread(target=stem_all) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert not failures, failures[:3]
    assert all(result == expected for result in results)
