"""The parser sandbox's child process: limits itself, then parses requests from stdin.

Protocol (one request at a time): a JSON header line {"kind", "url", "max_pages", "size"}
followed by `size` raw bytes; the answer is one JSON line {"ok": true, "result": {...}}
or {"ok": false, "code": ..., "message": ..., "detail": ...} (`message` for the operator,
`detail` — what the parser raised — for the parent's logs). No Django here, on purpose.
"""

from __future__ import annotations

import json
import resource
import sys


def _limit(memory_bytes: int) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _cpu_budget(cpu_seconds: int) -> None:
    """Each document gets `cpu_seconds` of CPU from now (SIGXCPU kills the child past it)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    used = int(usage.ru_utime + usage.ru_stime) + 1
    _soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = used + cpu_seconds
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))


def main() -> int:
    memory_bytes, cpu_seconds = int(sys.argv[1]), int(sys.argv[2])
    _limit(memory_bytes)
    sys.setrecursionlimit(10_000)
    import bs4  # noqa: F401  (imported before "ready" so start-up never counts against a document)
    import docx  # noqa: F401
    import lxml.html  # noqa: F401
    import pypdf  # noqa: F401

    from knowledge.parsing import ParseError, document_parse, error_detail

    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    stdout.write(b"ready\n")
    stdout.flush()
    while True:
        header = stdin.readline()
        if not header:
            return 0
        request = json.loads(header)
        data = stdin.read(request["size"])
        _cpu_budget(cpu_seconds)
        try:
            result = document_parse(
                request["kind"], data, url=request.get("url", ""), max_pages=request["max_pages"]
            )
            answer = {"ok": True, "result": result}
        except ParseError as error:
            answer = {"ok": False, "code": error.code, "message": error.message, "detail": error.detail}
        except MemoryError:
            answer = {
                "ok": False,
                "code": "parse_limit",
                "message": "Parsing needed more memory than allowed.",
            }
        except RecursionError:
            answer = {
                "ok": False,
                "code": "malformed",
                "message": "The document is nested too deeply to read.",
            }
        except Exception as error:  # a parser bug on hostile input fails this document only
            answer = {
                "ok": False,
                "code": "malformed",
                "message": "The document is damaged or in a form that cannot be read.",
                "detail": error_detail(error),
            }
        del data
        stdout.write(json.dumps(answer).encode() + b"\n")
        stdout.flush()


if __name__ == "__main__":
    sys.exit(main())
