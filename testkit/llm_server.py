"""A real OpenAI-compatible HTTP server on loopback, standing in for an LLM provider.

Tests script its behaviour per request (answer, stream, 500, 429 with Retry-After, hang,
drop the connection mid-stream, wait before answering, call tools: `tool_calls=[{"name",
"arguments"}]`; `default_behaviour` for every request once the script is empty) and read
back every request body it received, so they can assert what the prompt contained.
A request whose last message is a tool result is answered, by default, with that result
quoted ("Lookup result: …"), so a test sees the answer follow what the tool returned.
"""

from __future__ import annotations

import json
import socket
import threading
import time

from testkit.loopback import LoopbackHandler, ScriptedServer


def _chunk(model: str, delta: dict, finish_reason=None) -> bytes:
    body = {
        "id": "chatcmpl-loopback",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }
    return f"data: {json.dumps(body)}\n\n".encode()


class _Handler(LoopbackHandler):
    def do_POST(self):  # noqa: N802
        body = json.loads(self.body_read() or b"{}")
        llm = self.owner
        behaviour = llm.next_behaviour()
        with llm.lock:
            llm.requests.append(body)
            llm.headers.append({name.lower(): value for name, value in self.headers.items()})
        kind = behaviour.get("kind", "ok")
        if behaviour.get("wait"):
            # A slow provider: nothing at all for this long, then the answer as scripted.
            llm.release.wait(behaviour["wait"])
        if kind == "status":
            payload = json.dumps(
                {"error": {"message": behaviour.get("message", "upstream failure"), "type": "server_error"}}
            )
            retry_after = behaviour.get("retry_after")
            headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
            self.payload_send(behaviour["code"], payload.encode(), headers=headers)
            return
        if kind == "hang":
            llm.hanging.set()
            llm.release.wait(behaviour.get("seconds", 30))
            self.close_connection = True
            return
        content = behaviour.get("content")
        tool_calls = [
            {
                "id": call.get("id", f"call_{number}"),
                "type": "function",
                "function": {
                    "name": call["name"],
                    "arguments": call["arguments"]
                    if isinstance(call["arguments"], str)
                    else json.dumps(call["arguments"]),
                },
            }
            for number, call in enumerate(behaviour.get("tool_calls") or [])
        ]
        if content is None:
            content = "" if tool_calls else llm.default_content(body)
        model = body.get("model", "loopback-model")
        prompt_tokens = sum(len(str(message.get("content", ""))) // 4 for message in body.get("messages", []))
        completion_tokens = max(1, len(content) // 4)
        if not body.get("stream"):
            if kind == "drop":
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            payload = json.dumps(
                {
                    "id": "chatcmpl-loopback",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": model,
                    "choices": [
                        {
                            "index": 0,
                            "message": {
                                "role": "assistant",
                                "content": content or None,
                                "tool_calls": tool_calls,
                            }
                            if tool_calls
                            else {"role": "assistant", "content": content},
                            "finish_reason": "tool_calls" if tool_calls else "stop",
                        }
                    ],
                    "usage": {
                        "prompt_tokens": prompt_tokens,
                        "completion_tokens": completion_tokens,
                        "total_tokens": prompt_tokens + completion_tokens,
                    },
                }
            ).encode()
            self.payload_send(200, payload)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        pieces = [content[index : index + 8] for index in range(0, len(content), 8)] or (
            [] if tool_calls else [""]
        )
        delay = behaviour.get("delay", 0.0)
        try:
            self.wfile.write(_chunk(model, {"role": "assistant", "content": ""}))
            for number, piece in enumerate(pieces):
                if kind == "drop" and number == behaviour.get("after", 2):
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.wfile.write(_chunk(model, {"content": piece}))
                self.wfile.flush()
                with llm.lock:
                    llm.chunks_sent += 1
                if delay:
                    time.sleep(delay)
            for number, call in enumerate(tool_calls):
                # As OpenAI streams them: id and name first, then the arguments in pieces.
                arguments = call["function"]["arguments"]
                head = {
                    "index": number,
                    "id": call["id"],
                    "type": "function",
                    "function": {"name": call["function"]["name"], "arguments": ""},
                }
                self.wfile.write(_chunk(model, {"tool_calls": [head]}))
                for start in range(0, len(arguments), 5):
                    piece = {"index": number, "function": {"arguments": arguments[start : start + 5]}}
                    self.wfile.write(_chunk(model, {"tool_calls": [piece]}))
                self.wfile.flush()
            self.wfile.write(_chunk(model, {}, "tool_calls" if tool_calls else "stop"))
            if (body.get("stream_options") or {}).get("include_usage"):
                usage = {
                    "id": "chatcmpl-loopback",
                    "object": "chat.completion.chunk",
                    "created": int(time.time()),
                    "model": model,
                    "choices": [],
                    "usage": {
                        "prompt_tokens": prompt_tokens,
                        "completion_tokens": completion_tokens,
                        "total_tokens": prompt_tokens + completion_tokens,
                    },
                }
                self.wfile.write(f"data: {json.dumps(usage)}\n\n".encode())
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            with llm.lock:
                llm.client_disconnected += 1


class LoopbackLLM(ScriptedServer):
    handler_class = _Handler

    def __init__(self) -> None:
        super().__init__()
        self.headers: list[dict] = []  # each request's headers (lower-case names), e.g. the key sent
        self.hanging = threading.Event()
        self.chunks_sent = 0
        self.client_disconnected = 0
        # What every request does once the script is empty (e.g. {"wait": 30}: a slow provider).
        self.default_behaviour: dict = {"kind": "ok"}

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @staticmethod
    def default_content(body: dict) -> str:
        """Answer from the prompt: quote the last tool result if the request ends with one, else
        source [1] if the system prompt has one."""
        messages = body.get("messages") or []
        if messages and messages[-1].get("role") == "tool":
            return f"Lookup result: {messages[-1].get('content')}"
        system = next((m["content"] for m in body.get("messages", []) if m.get("role") == "system"), "")
        if '<source number="1"' in system:
            start = system.index('<source number="1"')
            text = system[start:].split("\n", 1)[1].split("</source>", 1)[0].strip()
            return f"{text} [1]"
        return "I'm sorry, I don't have information about that. Would you like to talk to a human agent?"

    @property
    def last_request(self) -> dict:
        return self.requests[-1]

    def system_prompt(self, index: int = -1) -> str:
        return next(m["content"] for m in self.requests[index]["messages"] if m["role"] == "system")
