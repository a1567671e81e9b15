#!/usr/bin/env python3
"""Footprint and latency benchmark for the pinch gateway (prints numbers).

Measures, against the release binary and a local fake model server that
answers instantly (OpenAI-compatible streaming):
  - stripped binary size
  - time from exec to "listening on" (ready), median of 10 starts, and the
    CPU time and page faults spent up to then
  - RSS after 10 s idle
  - RSS right after 20 concurrent chats, and again 30 s later
  - the gateway's added latency: time to first token through pinch
    (POST /api/chat, first SSE delta) minus direct to the fake, p50/p99

Usage: bench/gateway_bench.py [path/to/pinch]   (default target/release/pinch)

A/B comparison of two or more builds, interleaved so that machine noise hits
each build alike (starts alternate, latency requests rotate over the builds):
  bench/gateway_bench.py --compare OLD NEW [MORE...] [--rounds N]
prints one column per binary: size, exec -> ready (median, min), CPU time
and page faults spent up to ready, idle RSS, CPU per chat, and time to
first token and added latency p50/p99.
Only the Python standard library is used.
"""

import http.server
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

BIN = sys.argv[1] if len(sys.argv) > 1 and not sys.argv[1].startswith("--") else "target/release/pinch"
TARGETS = {"idle_rss_kib": 3 * 1024, "ready_ms": 10, "added_p99_ms": 2}


class FakeModel(http.server.BaseHTTPRequestHandler):
    """Answers every chat completion at once with a three-chunk stream."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        length = int(self.headers.get("Content-Length", 0))
        self.rfile.read(length)
        chunks = [
            {"choices": [{"index": 0, "delta": {"role": "assistant", "content": None}, "finish_reason": None}]},
            {"choices": [{"index": 0, "delta": {"content": "pong"}, "finish_reason": None}]},
            {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
        ]
        body = "".join("data: %s\n\n" % json.dumps(c) for c in chunks) + "data: [DONE]\n\n"
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()


class FakeServer(http.server.ThreadingHTTPServer):
    """A client hanging up early (the gateway's local model monitor probing
    the fake, which answers only POST) is no error worth a traceback."""

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def start_fake():
    srv = FakeServer(("127.0.0.1", 0), FakeModel)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def rss_split(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(("RssAnon:", "RssFile:")):
                out[line.split(":")[0]] = int(line.split()[1])
    return out


def threads(pid):
    return len(os.listdir("/proc/%d/task" % pid))


def write_config(home, fake_port):
    cfg = {
        "models": {"providers": {"fake": {"baseUrl": "http://127.0.0.1:%d/v1" % fake_port, "models": [{"id": "m", "contextWindow": 4096, "maxTokens": 128}]}}},
        "agents": {"defaults": {"maxConcurrent": 2}},
        "gateway": {"maxConnections": 128},
        "tools": {"webFetch": {"enabled": False}},
    }
    path = os.path.join(home, "pinch.json")
    with open(path, "w") as f:
        json.dump(cfg, f)
    os.chmod(path, 0o600)


def start_gateway(home, binary=None):
    # As the systemd units start it; without this setting in its
    # environment the gateway re-executes itself once to set it (+1-2 ms).
    env = dict(os.environ, PINCH_HOME=home, RUST_LOG="info", GLIBC_TUNABLES="glibc.pthread.stack_cache_size=0")
    for k in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        env.pop(k, None)
    t0 = time.perf_counter()
    p = subprocess.Popen([binary or BIN, "gateway", "run", "--port", "0"], env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    for line in p.stderr:
        if "listening on " in line:
            ready = (time.perf_counter() - t0) * 1000
            p.cost_at_ready = start_cost(p.pid)
            addr = line.split("listening on ", 1)[1].strip()
            threading.Thread(target=lambda: [None for _ in p.stderr], daemon=True).start()
            return p, addr, ready
    raise RuntimeError("gateway did not start")


def start_cost(pid):
    """CPU time (ms, every live thread's time on a CPU) and page faults of
    the process so far: work done, independent of how busy the machine is."""
    cpu_ns = 0
    try:
        for task in os.listdir("/proc/%d/task" % pid):
            try:
                with open("/proc/%d/task/%s/schedstat" % (pid, task)) as f:
                    cpu_ns += int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                pass
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        faults = int(fields[7]) + int(fields[9])
    except (OSError, ValueError, IndexError):
        return None
    return {"cpu_ms": cpu_ns / 1e6, "faults": faults}


def cpu_total_ms(pid):
    """The process's CPU time so far (user + system, every thread, also
    those that ended), in ms; clock-tick resolution, so use it over many
    requests."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000.0 / os.sysconf("SC_CLK_TCK")


def stop(p):
    p.terminate()
    p.wait(timeout=10)


def ttft_direct(fake_port):
    t0 = time.perf_counter()
    s = socket.create_connection(("127.0.0.1", fake_port))
    body = b'{"model":"m","messages":[{"role":"user","content":"ping"}],"stream":true}'
    s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    buf = b""
    while b'"content": "pong"' not in buf:
        chunk = s.recv(4096)
        if not chunk:
            break
        buf += chunk
    dt = (time.perf_counter() - t0) * 1000
    s.close()
    return dt


def ttft_pinch(addr, session):
    host, port = addr.rsplit(":", 1)
    t0 = time.perf_counter()
    s = socket.create_connection((host, int(port)))
    body = json.dumps({"session": session, "text": "ping"}).encode()
    # The gateway answers only its own Host (DNS-rebinding rule).
    s.sendall(b"POST /api/chat HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (addr.encode(), len(body), body))
    buf = b""
    first = None
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        buf += chunk
        if first is None and b"event: delta" in buf:
            first = (time.perf_counter() - t0) * 1000
        if b"event: final" in buf or b"event: error" in buf:
            break
    s.close()
    if b"event: final" not in buf:
        raise RuntimeError("chat failed: %r" % buf[-300:])
    return first


def chat_ok(addr, session):
    return ttft_pinch(addr, session) is not None


def pct(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def main():
    if not os.path.exists(BIN):
        sys.exit("no binary at %s: run `cargo build --release` first" % BIN)
    size = os.path.getsize(BIN)
    fake = start_fake()
    fport = fake.server_address[1]
    results = {"binary_bytes": size}
    print("binary: %s, %d bytes (%.2f MB)" % (BIN, size, size / 1e6))

    with tempfile.TemporaryDirectory() as home:
        os.chmod(home, 0o700)
        write_config(home, fport)
        # Ready time: the first start creates the store; measure starts over an existing one.
        p, addr, _ = start_gateway(home)
        stop(p)
        readies, costs = [], []
        for _ in range(10):
            p, addr, ready = start_gateway(home)
            readies.append(ready)
            if p.cost_at_ready:
                costs.append(p.cost_at_ready)
            stop(p)
        results["ready_ms_median"] = statistics.median(readies)
        print("exec -> listening: median %.1f ms (min %.1f, max %.1f) over 10 starts" % (statistics.median(readies), min(readies), max(readies)))
        if costs:
            results["ready_cpu_ms_median"] = statistics.median(c["cpu_ms"] for c in costs)
            results["ready_page_faults_median"] = statistics.median(c["faults"] for c in costs)
            print("up to listening: CPU median %.2f ms, page faults median %d (work done, independent of load)" % (results["ready_cpu_ms_median"], results["ready_page_faults_median"]))

        p, addr, _ = start_gateway(home)
        time.sleep(10)
        idle = rss_kib(p.pid)
        results["idle_rss_kib"] = idle
        split = rss_split(p.pid)
        results["idle_private_kib"] = split.get("RssAnon", 0)
        print("RSS after 10 s idle: %d KiB (%d threads): %d KiB private (heap, stacks), %d KiB shared read-only file pages (binary, libc)" % (idle, threads(p.pid), split.get("RssAnon", 0), split.get("RssFile", 0)))

        errors = []

        def one(i):
            try:
                chat_ok(addr, "bench:%d" % i)
            except Exception as e:  # noqa: BLE001
                errors.append(str(e))

        def burst(first, n):
            """n concurrent chats on distinct sessions; returns seconds taken."""
            ts = [threading.Thread(target=one, args=(first + i,)) for i in range(n)]
            t0 = time.perf_counter()
            for t in ts:
                t.start()
            for t in ts:
                t.join()
            return time.perf_counter() - t0

        burst_s = burst(0, 20)
        after = rss_kib(p.pid)
        print("RSS right after 20 concurrent chats: %d KiB (%d threads; %.2f s for the burst, %d errors)" % (after, threads(p.pid), burst_s, len(errors)))
        time.sleep(30)
        later = rss_kib(p.pid)
        results["burst_rss_kib"] = after
        results["after30_rss_kib"] = later
        print("RSS 30 s after the burst: %d KiB (%+.1f%% vs idle; %d threads)" % (later, (later - idle) * 100.0 / idle, threads(p.pid)))

        # A burst of 100 concurrent chats (distinct sessions): what is admitted,
        # what is refused as BUSY (backpressure), and memory before/after.
        before = rss_kib(p.pid)
        errors.clear()
        burst_s = burst(1000, 100)
        after100 = rss_kib(p.pid)
        time.sleep(30)
        later100 = rss_kib(p.pid)
        results["burst100_rss_kib"] = [before, after100, later100]
        print("100 concurrent chats: %d answered, %d refused (BUSY), %.2f s; RSS %d KiB before, %d right after, %d 30 s later" % (100 - len(errors), len(errors), burst_s, before, after100, later100))

        direct, through = [], []
        for i in range(200):
            direct.append(ttft_direct(fport))
            through.append(ttft_pinch(addr, "lat:%d" % (i % 10)))
        added = [t - d for t, d in zip(sorted(through), sorted(direct))]
        results["added_p50_ms"] = pct(added, 50)
        results["added_p99_ms"] = pct(added, 99)
        print("time to first token: direct p50 %.2f ms p99 %.2f ms; through pinch p50 %.2f ms p99 %.2f ms" % (pct(direct, 50), pct(direct, 99), pct(through, 50), pct(through, 99)))
        print("added latency: p50 %.2f ms, p99 %.2f ms" % (results["added_p50_ms"], results["added_p99_ms"]))

        # One conversation growing to 10,000 turns: memory must stay flat
        # (transcripts are streamed from the store and compacted, never loaded whole).
        turns = int(os.environ.get("PINCH_BENCH_TURNS", "10000"))
        samples = []
        t0 = time.perf_counter()
        for i in range(turns // 2):
            ttft_pinch(addr, "long:1")
            if (i + 1) % 1000 == 0:
                samples.append(rss_kib(p.pid))
        print("RSS every 2,000 turns of one conversation (%d turns, %.1f s): %s KiB" % (turns, time.perf_counter() - t0, ", ".join(str(x) for x in samples)))
        results["long_rss_kib"] = samples
        stop(p)
    fake.shutdown()

    print("\ntargets: idle RSS <= %d KiB: %s; ready <= %d ms: %s; RSS back within 10%% of idle: %s; added p99 <= %d ms: %s" % (
        TARGETS["idle_rss_kib"], "met" if results["idle_rss_kib"] <= TARGETS["idle_rss_kib"] else "NOT met",
        TARGETS["ready_ms"], "met" if results["ready_ms_median"] <= TARGETS["ready_ms"] else "NOT met",
        "met" if results["after30_rss_kib"] <= results["idle_rss_kib"] * 1.1 else "NOT met",
        TARGETS["added_p99_ms"], "met" if results["added_p99_ms"] <= TARGETS["added_p99_ms"] else "NOT met"))
    print(json.dumps(results))


def compare(binaries, rounds):
    """Interleaved A/B: the same measurements for each binary, alternating."""
    for b in binaries:
        if not os.path.exists(b):
            sys.exit("no binary at %s" % b)
    # Same footing for every binary's file pages: a binary just copied or
    # built sits in the page cache in the large folios it was written in,
    # which fault in whole and show as a few hundred KiB more RSS than the
    # same file read back from disk. Drop each file's clean cached pages.
    for b in binaries:
        fd = os.open(b, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
    fake = start_fake()
    fport = fake.server_address[1]
    names = ["%s (%s)" % (chr(ord("A") + i), b) for i, b in enumerate(binaries)]
    for n in names:
        print(n)
    stats = [{"ready": [], "cpu": [], "faults": [], "through": []} for _ in binaries]
    direct = []
    homes = [tempfile.TemporaryDirectory() for _ in binaries]
    try:
        for home, b in zip(homes, binaries):
            os.chmod(home.name, 0o700)
            write_config(home.name, fport)
            p, _, _ = start_gateway(home.name, b)  # creates the store
            stop(p)
        for r in range(rounds):
            order = list(enumerate(zip(homes, binaries)))
            if r % 2:
                order.reverse()
            for k, (home, b) in order:
                p, _, ready = start_gateway(home.name, b)
                stats[k]["ready"].append(ready)
                if p.cost_at_ready:
                    stats[k]["cpu"].append(p.cost_at_ready["cpu_ms"])
                    stats[k]["faults"].append(p.cost_at_ready["faults"])
                stop(p)
        running = [start_gateway(home.name, b) for home, b in zip(homes, binaries)]
        time.sleep(10)
        idle = [rss_kib(p.pid) for p, _, _ in running]
        idle_private = [rss_split(p.pid).get("RssAnon", 0) for p, _, _ in running]
        for _, addr, _ in running:
            for i in range(20):  # warm-up: sessions exist, pages touched
                ttft_pinch(addr, "lat:%d" % (i % 10))
        cpu_before = [cpu_total_ms(p.pid) for p, _, _ in running]
        for i in range(rounds * 30):
            turn = [None] + list(enumerate(running))
            shift = i % len(turn)
            for item in turn[shift:] + turn[:shift]:
                if item is None:
                    direct.append(ttft_direct(fport))
                else:
                    k, (_, addr, _) = item
                    stats[k]["through"].append(ttft_pinch(addr, "lat:%d" % (i % 10)))
        chat_cpu = [(cpu_total_ms(p.pid) - before) / (rounds * 30) for (p, _, _), before in zip(running, cpu_before)]
        for p, _, _ in running:
            stop(p)
    finally:
        for home in homes:
            home.cleanup()
        fake.shutdown()

    def added(k, q):
        return pct([t - d for t, d in zip(sorted(stats[k]["through"]), sorted(direct))], q)

    rows = [
        ("binary bytes", lambda k: "%d" % os.path.getsize(binaries[k])),
        ("exec -> ready, median ms", lambda k: "%.2f" % statistics.median(stats[k]["ready"])),
        ("exec -> ready, min ms", lambda k: "%.2f" % min(stats[k]["ready"])),
        ("CPU up to ready, median ms", lambda k: "%.2f" % statistics.median(stats[k]["cpu"]) if stats[k]["cpu"] else "-"),
        ("page faults up to ready, median", lambda k: "%d" % statistics.median(stats[k]["faults"]) if stats[k]["faults"] else "-"),
        ("idle RSS KiB (10 s)", lambda k: "%d" % idle[k]),
        ("  of which private (heap, stacks) KiB", lambda k: "%d" % idle_private[k]),
        ("CPU per chat ms (gateway, all threads)", lambda k: "%.2f" % chat_cpu[k]),
        ("time to first token p50 ms", lambda k: "%.2f" % pct(stats[k]["through"], 50)),
        ("added latency p50 ms", lambda k: "%.2f" % added(k, 50)),
        ("added latency p99 ms", lambda k: "%.2f" % added(k, 99)),
    ]
    print("\n%d rounds: %d starts per binary, %d requests per binary, %d direct (fake alone p50 %.2f ms, p99 %.2f ms)" % (
        rounds, rounds, len(direct), len(direct), pct(direct, 50), pct(direct, 99)))
    header = "%-40s" % "" + "".join("%14s" % chr(ord("A") + i) for i in range(len(binaries)))
    print(header)
    for label, value in rows:
        print("%-40s" % label + "".join("%14s" % value(k) for k in range(len(binaries))))


if __name__ == "__main__":
    if "--compare" in sys.argv:
        args = sys.argv[sys.argv.index("--compare") + 1:]
        rounds = 10
        if "--rounds" in args:
            at = args.index("--rounds")
            rounds = int(args[at + 1])
            del args[at:at + 2]
        if len(args) < 2:
            sys.exit("usage: bench/gateway_bench.py --compare OLD NEW [MORE...] [--rounds N]")
        compare(args, rounds)
    else:
        main()
