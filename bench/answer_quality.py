"""Answer quality of the offline answerer on the in-repo set (`bench/data/answer_quality.json`):
fact recall, false-answer rate, right Q&A first, false refusals. The scenario is
`testkit/answer_quality.py` (the test suite runs it too).
Run: `.venv/bin/python bench/answer_quality.py` (or `make bench`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from testkit.answer_quality import run, setup  # noqa: E402


def main() -> dict:
    setup()
    figures = run()["figures"]
    print(json.dumps(figures, indent=2))
    return figures


if __name__ == "__main__":
    from bench import results

    sys.exit(results.standalone(sys.modules[__name__]))
