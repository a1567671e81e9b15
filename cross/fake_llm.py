#!/usr/bin/env python3
"""A tiny fake OpenAI-compatible model server for cross/test.sh's smoke test.

POST /v1/chat/completions answers with a streamed (SSE) reply
"Hello from fake: <last user text>" in three chunks. A user text
"exec: PROGRAM ARG..." is answered with a call of the `exec` tool instead,
and the request after it (ending with the tool's result) with
"tool output: <result>". GET /v1/models lists one model. Listens on 127.0.0.1 on an ephemeral port and prints the port on
stdout's first line. Each request's path and Authorization header go to stderr.
"""
import json
import re
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


ENVELOPE = re.compile(r"^\[[^\]\n]*\] ")


def chunk(delta, finish=None):
    body = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1,
            "model": "m1", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return ("data: " + json.dumps(body) + "\n\n").encode()


def text_of(c):
    if isinstance(c, str):
        return c
    if isinstance(c, list):
        return "".join(p.get("text", "") for p in c if isinstance(p, dict))
    return ""


def last_user_text(req):
    """The newest user text, without the envelope pinch puts in front of it
    ("[Tue 2026-11-24 00:44 UTC · channel · sender] ")."""
    for m in reversed(req.get("messages", [])):
        if m.get("role") == "user":
            return ENVELOPE.sub("", text_of(m.get("content")), count=1)
    return ""


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        body = json.dumps({"object": "list", "data": [{"id": "m1", "object": "model"}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        req = json.loads(self.rfile.read(n) or b"{}")
        print("fake_llm: POST %s auth=%r" % (self.path, self.headers.get("Authorization")),
              file=sys.stderr, flush=True)
        if not self.path.endswith("/chat/completions"):
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(chunk({"role": "assistant", "content": None}))
        msgs = req.get("messages", [])
        user = last_user_text(req)
        if msgs and msgs[-1].get("role") == "tool":
            pieces = ["tool output: ", text_of(msgs[-1].get("content"))]
        elif user.startswith("exec: "):
            call = {"index": 0, "id": "call_1", "type": "function",
                    "function": {"name": "exec", "arguments": json.dumps({"command": user[6:]})}}
            self.wfile.write(chunk({"tool_calls": [call]}))
            self.wfile.write(chunk({}, "tool_calls"))
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
            self.close_connection = True
            return
        else:
            pieces = ["Hello", " from", " fake: " + user]
        for piece in pieces:
            self.wfile.write(chunk({"content": piece}))
            self.wfile.flush()
        self.wfile.write(chunk({}, "stop"))
        usage = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m1",
                 "choices": [], "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18}}
        self.wfile.write(("data: " + json.dumps(usage) + "\n\ndata: [DONE]\n\n").encode())
        self.wfile.flush()
        self.close_connection = True


def main():
    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    print(srv.server_address[1], flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
