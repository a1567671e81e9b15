#!/usr/bin/env python3
"""service-watch: checks HTTP endpoints (status, latency) and systemd units
and prints one OK/FAIL/SKIP line per check. For each failure it gathers a
compact context for a root-cause guess: the tail of a log file or of the
unit's journal, and the recent deployment history (git log) of a repo.
Python 3 standard library only; every check has a timeout.
"""

import argparse
import concurrent.futures
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request

EPILOG = """\
checks (as arguments, or one per line in the config file, default
$HOME/watch.txt; lines starting with # are comments):
  https://host/health [options]        an HTTP check (also: http URL ...)
  unit NAME [options]                  a systemd unit (systemctl is-active)

options (key=value, no spaces):
  expect=200        the status required (default: any 2xx or 3xx)
  slow=1500         fail when the answer takes longer (milliseconds)
  contains=TEXT     fail unless the body contains TEXT
  log=PATH          on failure, show the end of this log file
  unit=NAME         on failure of an HTTP check, show this unit's journal
  repo=PATH         on failure, show `git log -5` of this deployment repo

Relative log= and repo= paths are taken from $HOME (the workspace).
Output: "OK", "FAIL" or "SKIP" lines, a context block per failure, then a
summary line ("ALL OK (n checks)" when nothing failed, "NOTHING CHECKED"
when every check was skipped). Exit 0 when all is OK, 1 when a check
failed or nothing could be checked, 2 on a usage or config error.
"""

ERRORISH = re.compile(r"error|fail|fatal|panic|exception|traceback|denied|refused|timed? ?out|killed|oom|segfault|critical", re.I)
LINE_CHARS = 200
OPTION_KEYS = ("expect", "slow", "contains", "log", "unit", "repo")


def fail_usage(msg):
    sys.stderr.write("service-watch: %s\n" % msg)
    sys.exit(2)


def parse_check(line):
    words = line.split()
    kind = words[0].lower()
    if kind in ("http", "https") and len(words) > 1 and "://" in words[1]:
        words = words[1:]
        kind = "http"
    if re.match(r"https?://", words[0]):
        check = {"kind": "http", "target": words[0]}
    elif kind == "unit":
        if len(words) < 2 or "=" in words[1]:
            raise ValueError("`unit` needs a unit name, e.g. `unit nginx.service`")
        check = {"kind": "unit", "target": words[1]}
        words = words[1:]
    else:
        raise ValueError("cannot read check %r: use an http(s) URL or `unit NAME`" % line)
    for w in words[1:]:
        k, sep, v = w.partition("=")
        if not sep or k not in OPTION_KEYS or not v:
            raise ValueError("unknown option %r; options are %s (key=value)" % (w, ", ".join(OPTION_KEYS)))
        if k in ("expect", "slow") and not v.isdigit():
            raise ValueError("%s must be a number, found %r" % (k, v))
        if k in ("log", "repo"):
            # cwd is the skill folder; relative paths mean the workspace.
            v = os.path.join(os.environ.get("HOME", "."), os.path.expanduser(v))
        check[k] = v
    return check


def read_config(path, explicit):
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        if explicit:
            fail_usage("config file %s does not exist" % path)
        return []
    except OSError as e:
        fail_usage("cannot read %s: %s" % (path, e.strerror))
    out = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if line and not line.startswith("#"):
            out.append((line, "%s:%d" % (path, n)))
    return out


def check_http(c, timeout):
    url = c["target"]
    req = urllib.request.Request(url, headers={"User-Agent": "pinch-service-watch/1.0"})
    started = time.monotonic()
    status, body = None, b""
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            status = r.status
            body = r.read(64 * 1024)
    except urllib.error.HTTPError as e:
        status = e.code
        try:
            body = e.read(4096)
        except OSError:
            body = b""
    except urllib.error.URLError as e:
        reason = e.reason
        if isinstance(reason, (TimeoutError,)) or "timed out" in str(reason):
            return False, "no answer within %g s" % timeout
        return False, "cannot connect: %s" % reason
    except (TimeoutError, OSError) as e:
        return False, "no answer within %g s (%s)" % (timeout, e)
    ms = int((time.monotonic() - started) * 1000)
    if "expect" in c:
        ok = status == int(c["expect"])
        why = "HTTP %d, expected %s" % (status, c["expect"])
    else:
        ok = 200 <= status < 400
        why = "HTTP %d" % status
    if ok and "slow" in c and ms > int(c["slow"]):
        return False, "HTTP %d but slow: %d ms > %s ms" % (status, ms, c["slow"])
    if ok and "contains" in c and c["contains"].encode() not in body:
        return False, "HTTP %d but the body lacks %r" % (status, c["contains"])
    if ok:
        return True, "HTTP %d in %d ms" % (status, ms)
    snippet = " ".join(body.decode("utf-8", "replace").split())[:120]
    return False, "%s in %d ms%s" % (why, ms, (": " + snippet) if snippet else "")


def run(argv, timeout=10):
    try:
        p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    except FileNotFoundError:
        return None, "", "%s is not installed" % argv[0]
    except subprocess.TimeoutExpired:
        return None, "", "%s took longer than %d s" % (argv[0], timeout)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace").strip()


def check_unit(c, timeout):
    if not shutil.which("systemctl"):
        return None, "systemctl is not available on this host"
    code, out, err = run(["systemctl", "is-active", c["target"]], timeout=max(5, int(timeout)))
    state = out.strip() or err or "unknown"
    if code is None:
        return False, state
    if code == 0 and state == "active":
        return True, "active"
    if "System has not been booted with systemd" in state or "Failed to connect to bus" in state:
        return None, "systemd is not running here (%s)" % state.splitlines()[0]
    return False, state.splitlines()[0]


def pick_lines(lines, n):
    """The last n lines, preferring error-looking ones when there are more."""
    lines = [l[:LINE_CHARS] for l in lines if l.strip()]
    if len(lines) <= n:
        return lines, ""
    tail = set(range(len(lines) - min(5, n), len(lines)))
    errs = [i for i in range(len(lines)) if ERRORISH.search(lines[i]) and i not in tail]
    keep = set(errs[-(n - len(tail)):]) if n > len(tail) else set()
    keep |= tail
    if len(keep) < n:  # fill with the most recent other lines
        for i in range(len(lines) - 1, -1, -1):
            if len(keep) >= n:
                break
            keep.add(i)
    chosen = [lines[i] for i in sorted(keep)]
    return chosen, " (%d of the last %d lines, error lines first)" % (len(chosen), len(lines))


def tail_file(path, nbytes=64 * 1024):
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - nbytes))
        data = f.read().decode("utf-8", "replace")
    lines = data.splitlines()
    if size > nbytes and lines:
        lines = lines[1:]  # the first line is probably cut
    return lines[-50:]


def context(c, log_lines):
    out = ["== context: %s %s ==" % (c["kind"], c["target"])]
    if c.get("log"):
        try:
            lines, note = pick_lines(tail_file(c["log"]), log_lines)
            out.append("-- log %s%s --" % (c["log"], note))
            out.extend(lines or ["(empty)"])
        except OSError as e:
            out.append("-- log %s: cannot read (%s); check the path and that pinch may read it --" % (c["log"], e.strerror))
    unit = c.get("unit") or (c["target"] if c["kind"] == "unit" else None)
    if unit:
        if shutil.which("journalctl"):
            code, text, err = run(["journalctl", "-u", unit, "-n", "50", "--no-pager", "-o", "short-iso"])
            if code == 0:
                lines = [l for l in text.splitlines() if not l.startswith("-- ")]
                lines, note = pick_lines(lines, log_lines)
                out.append("-- journal %s%s --" % (unit, note))
                out.extend(lines or ["(no entries; the user running pinch may need the systemd-journal group)"])
            else:
                out.append("-- journal %s: %s (add the user running pinch to the systemd-journal group) --" % (unit, err or "journalctl failed"))
        else:
            out.append("-- journal %s: journalctl is not available; add log=PATH to the check --" % unit)
    if c.get("repo"):
        code, text, err = run(["git", "-C", c["repo"], "log", "-5", "--date=format:%Y-%m-%d %H:%M", "--format=%h %ad %an: %s"])
        if code == 0:
            out.append("-- deploys %s (git log -5) --" % c["repo"])
            out.extend(l[:LINE_CHARS] for l in text.splitlines())
        else:
            out.append("-- deploys %s: %s --" % (c["repo"], (err or "git failed").splitlines()[0]))
    return out


def main():
    home = os.environ.get("HOME", ".")
    ap = argparse.ArgumentParser(
        prog="watch.py",
        description="Check HTTP endpoints and systemd units; on failure, gather logs and recent deploys.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("checks", nargs="*", metavar="CHECK", help="URL or `unit NAME`, with options (see below)")
    ap.add_argument("--config", help="config file (default $HOME/watch.txt)")
    ap.add_argument("--timeout", type=float, default=5, help="seconds per check (default 5)")
    ap.add_argument("--log-lines", type=int, default=20, help="log lines per failure (default 20)")
    ap.add_argument("--no-context", action="store_true", help="only the OK/FAIL lines")
    opts = ap.parse_args()
    if not 0 < opts.timeout <= 60:
        fail_usage("--timeout must be between 0 and 60 seconds")
    if not 1 <= opts.log_lines <= 50:
        fail_usage("--log-lines must be between 1 and 50")

    config = opts.config or os.path.join(home, "watch.txt")
    # `unit` and its name may arrive as two arguments.
    args, i = [], 0
    while i < len(opts.checks):
        a = opts.checks[i].strip()
        if a.lower() == "unit" and i + 1 < len(opts.checks):
            a, i = a + " " + opts.checks[i + 1], i + 1
        args.append((a, "argument"))
        i += 1
    lines = args or read_config(config, bool(opts.config))
    if not lines:
        fail_usage(
            "nothing to check: pass checks as arguments or list them in %s, one per line, e.g.\n"
            "  https://example.com/health slow=2000 repo=/srv/app\n"
            "  unit nginx.service log=/var/log/nginx/error.log" % config
        )
    checks = []
    for line, where in lines:
        try:
            checks.append(parse_check(line))
        except ValueError as e:
            fail_usage("%s: %s" % (where, e))

    def one(c):
        if c["kind"] == "http":
            return check_http(c, opts.timeout)
        return check_unit(c, opts.timeout)

    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(one, checks))

    counts = {"OK": 0, "FAIL": 0, "SKIP": 0}
    for c, (ok, detail) in zip(checks, results):
        word = "SKIP" if ok is None else ("OK" if ok else "FAIL")
        counts[word] += 1
        print("%-4s %s %s — %s" % (word, c["kind"], c["target"], detail))
    if counts["FAIL"] and not opts.no_context:
        bare = []
        for c, (ok, _) in zip(checks, results):
            if ok is not False:
                continue
            if c["kind"] == "unit" or any(k in c for k in ("log", "unit", "repo")):
                print()
                print("\n".join(context(c, opts.log_lines)))
            else:
                bare.append(c["target"])
        if bare:
            print()
            print("no context for %s (add log=, unit= or repo= to the check)" % ", ".join(bare))
        print()
    if counts["FAIL"] == 0 and counts["OK"] == 0:
        print("NOTHING CHECKED (%d skipped)" % counts["SKIP"])
        return 1
    if counts["FAIL"] == 0:
        skipped = ", %d skipped" % counts["SKIP"] if counts["SKIP"] else ""
        print("ALL OK (%d check%s%s)" % (len(checks), "" if len(checks) == 1 else "s", skipped))
        return 0
    print("%d OK, %d FAIL, %d SKIP" % (counts["OK"], counts["FAIL"], counts["SKIP"]))
    return 1


if __name__ == "__main__":
    sys.exit(main())
