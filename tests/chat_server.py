"""A real OpenAI-compatible chat-completions server on 127.0.0.1 for the ``openai`` answering
head and judge: it records every request and replies as a plan says (status, content, refusal,
delay), so retries, timeouts, refusals and errors are exercised over real HTTP."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Reply:
    """What the server answers to one request."""

    status: int = 200
    content: str | None = "Answer: red\nConfidence: 0.9"
    refusal: str | None = None
    delay_s: float = 0.0
    #: the error body's message where ``status`` is not 200 (default: names the status)
    error: str | None = None


@dataclass
class ChatServer:
    """A server's record of requests; ``plan`` maps the call number (from 1) to a reply."""

    plan: Callable[[int], Reply]
    requests: list[dict] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    base_url: str = ""

    @property
    def calls(self) -> int:
        return len(self.requests)


def _handler(state: ChatServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
            state.requests.append(body)
            state.headers.append(dict(self.headers.items()))
            state.paths.append(self.path)
            reply = state.plan(state.calls)
            if reply.delay_s:
                time.sleep(reply.delay_s)
            payload: dict
            if reply.status == 200:
                message = {"role": "assistant", "content": reply.content}
                if reply.refusal is not None:
                    message["refusal"] = reply.refusal
                payload = {
                    "id": "chatcmpl-test",
                    "object": "chat.completion",
                    "model": body.get("model"),
                    "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                }
            else:
                message_text = reply.error or f"status {reply.status} from the test server"
                payload = {"error": {"message": message_text}}
            data = json.dumps(payload).encode()
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except OSError:
                pass  # the client gave up (a timeout test)

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: the test output is no place for access logs."""

    return Handler


def serve_chat() -> Iterator[Callable[[Callable[[int], Reply]], ChatServer]]:
    """Start chat servers with a reply plan; all are stopped when the generator closes."""
    running: list[tuple[ThreadingHTTPServer, threading.Thread]] = []

    def start(plan: Callable[[int], Reply]) -> ChatServer:
        state = ChatServer(plan)
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
        server.daemon_threads = True
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        running.append((server, thread))
        state.base_url = f"http://127.0.0.1:{server.server_address[1]}/v1"
        return state

    yield start
    for server, thread in running:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
