#!/usr/bin/env python3
"""Prompt-cache benchmark against a real llama-server.

Starts pinch (the debug build: it honours PINCH_TEST_CLOCK_FILE, so the
clock jumps 70 s between turns instead of the benchmark waiting) in a
temporary home, pointed through a small recording proxy at llama-server
(PINCH_LLAMA_URL, default http://127.0.0.1:18080; `scripts/local-llm.sh
start 18080` provides one). For every model call the proxy records
llama-server's `timings` (prompt_n evaluated, cache_n served from cache)
and the time to the first streamed token. Prints:

- a new user's first-request prompt tokens (system prompt + tool schemas +
  "hello") with a 4k window (the compact prompt, target <= 1,200) and with
  a 32k window (the full prompt), split into system prompt, tool schemas
  and the rest with llama-server's /apply-template and /tokenize
- the share of prompt tokens served from cache over turns 2-6 of one
  conversation whose turns are 70 s apart (target >= 0.85), starting from a
  cold cache (a unique first line in AGENTS.md), and llama-server's own
  `f_keep` per turn when its log is readable (PINCH_LLAMA_LOG, default
  ~/.cache/pinch/llama-server.log)
- TTFT of turn 6 / turn 1
- the same for the six turns following a compaction

`--first-only` stops after the first-request figures.
Build first: `cargo build` (debug).
"""
import http.client
import http.server
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.join(ROOT, "target", "debug", "pinch")
LLAMA = os.environ.get("PINCH_LLAMA_URL", "http://127.0.0.1:18080").rstrip("/")
# llama-server's log, for its own `f_keep` (share of a slot's cached tokens
# kept by the next request); scripts/local-llm.sh writes it here.
LLAMA_LOG = os.environ.get("PINCH_LLAMA_LOG",
                           os.path.expanduser("~/.cache/pinch/llama-server.log"))

calls = []  # one dict per model call: prompt_n, cache_n, ttft_s, summary
bodies = []  # the request body of every model call, as pinch sent it


class Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        req = json.loads(body or b"{}")
        bodies.append(req)
        system = ""
        if req.get("messages") and req["messages"][0].get("role") == "system":
            system = req["messages"][0].get("content") or ""
        u = urllib.parse.urlparse(LLAMA)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=600)
        t0 = time.monotonic()
        conn.request("POST", self.path, body, {"Content-Type": "application/json"})
        resp = conn.getresponse()
        self.send_response(resp.status)
        self.send_header("Content-Type", resp.getheader("Content-Type", "text/event-stream"))
        self.send_header("Connection", "close")
        self.end_headers()
        rec = {"prompt_n": 0, "cache_n": 0, "predicted_n": 0, "ttft_s": None,
               "aside": system.startswith("You write the running summary")
               or system.startswith("The older part of this conversation")}
        while True:
            line = resp.readline()
            if not line:
                break
            self.wfile.write(line)
            self.wfile.flush()
            s = line.decode("utf-8", "replace").strip()
            if not s.startswith("data: {"):
                continue
            try:
                chunk = json.loads(s[6:])
            except ValueError:
                continue
            for c in chunk.get("choices") or []:
                d = c.get("delta") or {}
                if rec["ttft_s"] is None and (d.get("content") or d.get("tool_calls")):
                    rec["ttft_s"] = time.monotonic() - t0
            t = chunk.get("timings")
            if t:
                rec["prompt_n"] = t.get("prompt_n", 0)
                rec["cache_n"] = t.get("cache_n", 0)
                rec["predicted_n"] = t.get("predicted_n", 0)
        if rec["ttft_s"] is None:
            rec["ttft_s"] = time.monotonic() - t0
        calls.append(rec)
        self.close_connection = True


def start_proxy():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv.server_address[1]


def chat(port, session, text):
    body = json.dumps({"session": session, "text": text, "stream": False}).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/api/chat", body,
                                 {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=900) as r:
        return json.load(r)


def start_gateway(proxy, window, extra_defaults=None):
    """pinch in a fresh home, its model `llama/smollm2` with `window` tokens
    of context, through the recording proxy. Returns (process, port, clock
    file), or None when it did not start."""
    home = tempfile.mkdtemp(prefix="pinch-cache-bench-")
    clock = os.path.join(home, "clock")
    with open(clock, "w") as f:
        f.write("0")
    defaults = {"temperature": 0, "timeoutSeconds": 900}
    defaults.update(extra_defaults or {})
    cfg = {
        "gateway": {"port": 0},
        "models": {"providers": {"llama": {
            "baseUrl": f"http://127.0.0.1:{proxy}/v1", "api": "openai-completions",
            "timeouts": {"firstToken": 600, "idle": 120, "total": 900},
            "models": [{"id": "smollm2", "contextWindow": window, "maxTokens": 24}]}}},
        "agents": {"defaults": defaults},
    }
    path = os.path.join(home, "pinch.json")
    with open(path, "w") as f:
        json.dump(cfg, f)
    os.chmod(path, 0o600)
    env = dict(os.environ, PINCH_HOME=home, PINCH_TEST_CLOCK_FILE=clock, RUST_LOG="info")
    gw = subprocess.Popen([BIN, "gateway", "run", "--port", "0"], env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 30
    while time.time() < deadline:
        line = gw.stderr.readline()
        if "listening on " in line:
            addr = line.split("listening on ", 1)[1].split()[0]
            threading.Thread(target=lambda: [None for _ in gw.stderr], daemon=True).start()
            return gw, int(addr.rsplit(":", 1)[1]), clock, os.path.join(home, "workspace")
        if not line and gw.poll() is not None:
            break
    gw.kill()
    return None


def log_size():
    try:
        return os.path.getsize(LLAMA_LOG)
    except OSError:
        return None


def f_keep_since(offset):
    """The last `f_keep = X` llama-server logged after `offset`, or None."""
    if offset is None:
        return None
    try:
        with open(LLAMA_LOG, "rb") as f:
            f.seek(offset)
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return None
    found = [line.split("f_keep = ", 1)[1].split()[0] for line in text.splitlines()
             if "f_keep = " in line]
    return float(found[-1]) if found else None


def llama_post(path, payload):
    req = urllib.request.Request(LLAMA + path, json.dumps(payload).encode(),
                                 {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.load(r)


def tokens(text):
    return len(llama_post("/tokenize", {"content": text, "parse_special": True})["tokens"])


def rendered_tokens(req):
    """Prompt tokens of a request as llama-server's chat template renders it."""
    keep = {k: req[k] for k in ("messages", "tools") if k in req}
    return tokens(llama_post("/apply-template", keep)["prompt"])


def first_request(proxy, window, label):
    """One `hello` in a new home: the prompt tokens llama-server counted, and
    where they come from (system prompt, tool schemas, the rest)."""
    started = start_gateway(proxy, window)
    if started is None:
        print("gateway did not start")
        return None
    gw, port, _, _ = started
    try:
        before = len(calls)
        chat(port, f"first:{window}:{time.time()}", "hello")
        rec = calls[before]
        req = bodies[before]
    finally:
        gw.terminate()
        gw.wait(timeout=10)
    total = rec["prompt_n"] + rec["cache_n"]
    no_tools = dict(req)
    no_tools.pop("tools", None)
    tools_n = rendered_tokens(req) - rendered_tokens(no_tools)
    system = req["messages"][0].get("content") or "" if req["messages"][0].get("role") == "system" else ""
    system_n = tokens(system)
    names = [t["function"]["name"] for t in req.get("tools") or []]
    print(f"first request, {label} (contextWindow {window}): {total} prompt tokens "
          f"(system prompt {system_n}, {len(names)} tool schemas {tools_n}, "
          f"template and user turn {total - system_n - tools_n}); "
          f"system prompt {len(system.encode())} bytes, tools {len(json.dumps(req.get('tools') or []))} bytes")
    if os.environ.get("PINCH_BENCH_DUMP"):
        with open(os.environ["PINCH_BENCH_DUMP"] + f".{window}.json", "w") as f:
            json.dump(req, f, indent=1)
    return total


def main():
    try:
        urllib.request.urlopen(LLAMA + "/health", timeout=3)
    except Exception as e:
        print(f"SKIPPED: no llama-server at {LLAMA} ({e}); run scripts/local-llm.sh start 18080")
        return 0
    if not os.path.exists(BIN):
        print("build first: cargo build")
        return 1
    proxy = start_proxy()
    small = first_request(proxy, 4096, "compact prompt")
    large = first_request(proxy, 32768, "full prompt")
    if small is None or large is None:
        return 1
    print(f"first request: {small} prompt tokens with a small window (target <= 1200), "
          f"{large} with the full prompt")
    if "--first-only" in sys.argv:
        return 0
    started = start_gateway(proxy, 4096)
    if started is None:
        print("gateway did not start")
        return 1
    gw, port, clock, workspace = started
    try:
        offset = [0]

        def turn(session, text):
            offset[0] += 70_000  # more than a minute between turns
            with open(clock, "w") as f:
                f.write(str(offset[0]))
            before = len(calls)
            logged = log_size()
            chat(port, session, text)
            main_calls = [c for c in calls[before:] if not c["aside"]]
            rec = main_calls[-1]
            rec["f_keep"] = f_keep_since(logged)
            return rec, len(calls[before:]) - len(main_calls) > 0

        # A first line no earlier request had: turn 1 starts from a cold
        # cache, as a new user's first message on a fresh server does.
        agents = os.path.join(workspace, "AGENTS.md")
        with open(agents) as f:
            starter = f.read()
        with open(agents, "w") as f:
            f.write(f"<!-- benchmark run {time.time()} -->\n" + starter)

        stamp = str(int(time.time()))
        first = []
        for i in range(6):
            rec, _ = turn(f"bench:{stamp}", "hello" if i == 0 else f"tell me about the number {i}")
            first.append(rec)
        report("turns 2-6, 70 s apart", first)

        # A long conversation until a compaction, then six more turns.
        session = f"bench-long:{stamp}"
        compacted = False
        for i in range(40):
            _, compacted = turn(session, f"note {i}: " + "the quick brown fox jumps over the lazy dog " * 12)
            if compacted:
                print(f"compaction at turn {i + 1} of the long conversation")
                break
        if not compacted:
            print("no compaction happened within 40 turns")
            return 1
        after = [turn(session, f"after {i}: what did I say?")[0] for i in range(6)]
        report("six turns after a compaction (first one re-reads the summary)", after)
    finally:
        gw.terminate()
        gw.wait(timeout=10)
    return 0


def report(label, recs):
    for i, r in enumerate(recs):
        total = r["prompt_n"] + r["cache_n"]
        keep = "f_keep    -" if r.get("f_keep") is None else f"f_keep {r['f_keep']:.3f}"
        print(f"  turn {i + 1}: prompt {total:5d} tokens, from cache {r['cache_n']:5d}, "
              f"evaluated {r['prompt_n']:4d}, {keep}, ttft {r['ttft_s'] * 1000:7.0f} ms")
    later = recs[1:]
    cached = sum(r["cache_n"] for r in later)
    total = sum(r["prompt_n"] + r["cache_n"] for r in later)
    share = cached / total if total else 0.0
    ratio = recs[-1]["ttft_s"] / recs[0]["ttft_s"] if recs[0]["ttft_s"] else 0.0
    keeps = [r["f_keep"] for r in later if r.get("f_keep") is not None]
    keep = f"min f_keep {min(keeps):.3f}" if keeps else f"f_keep not logged ({LLAMA_LOG})"
    print(f"{label}: cache share over turns 2-6 = {share:.3f} (target >= 0.85); "
          f"{keep}; ttft turn 6 / turn 1 = {ratio:.2f}")


if __name__ == "__main__":
    sys.exit(main())
