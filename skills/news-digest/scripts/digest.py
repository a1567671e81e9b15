#!/usr/bin/env python3
"""news-digest: gathers top stories from RSS/Atom feeds, Hacker News and an
optional Tavily-compatible search API, and prints one line per story:

    - Title — source — url

Stories are deduplicated by URL, taken in turn from each source and capped.
Python 3 standard library only; every network call has a timeout.
"""

import argparse
import concurrent.futures
import email.utils
import html
import json
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from datetime import datetime, timezone

HN_BASE = "https://hacker-news.firebaseio.com/v0"
SEARCH_BASE = "https://api.tavily.com"
USER_AGENT = "pinch-news-digest/1.0"
MAX_BYTES = 2 * 1024 * 1024
TITLE_CHARS = 140

EPILOG = """\
sources (as arguments, or one per line in the config file):
  https://site/feed.xml [Label]   an RSS 2.0, RSS 1.0 or Atom feed
  feed URL [Label]                the same, spelled out
  hn [BASE_URL]                   Hacker News top stories
                                  (default base %s)
  search QUERY...                 web search through a Tavily-compatible API

settings (config file only):
  search-url URL                  search API base (default %s)
  search-key-file PATH            file holding the API key (relative to $HOME)

The config file defaults to $HOME/feeds.txt; lines starting with # are
comments. Source arguments replace the file's sources (its settings still
apply). Output: "- Title — source — url" lines, then a summary line; sources
that failed are listed as "! source: reason". Exit 0 when stories were
found, 1 when every source failed, 2 on a usage or config error.
""" % (HN_BASE, SEARCH_BASE)


class SourceError(Exception):
    pass


def fail_usage(msg):
    sys.stderr.write("news-digest: %s\n" % msg)
    sys.exit(2)


def one_line(s):
    return " ".join((s or "").split())


def clean_title(s):
    s = html.unescape(re.sub(r"<[^>]+>", "", s or ""))
    s = one_line(s)
    if len(s) > TITLE_CHARS:
        s = s[: TITLE_CHARS - 1].rstrip() + "…"
    return s or "(untitled)"


def host_of(url):
    h = urllib.parse.urlsplit(url).hostname or url
    return h[4:] if h.startswith("www.") else h


def url_key(url):
    """Normalised URL for deduplication: no fragment, no tracking
    parameters, no trailing slash, case-insensitive scheme and host."""
    p = urllib.parse.urlsplit(url.strip())
    query = [
        (k, v)
        for k, v in urllib.parse.parse_qsl(p.query, keep_blank_values=True)
        if not k.lower().startswith("utm_")
    ]
    host = (p.hostname or "").lower()
    if host.startswith("www."):
        host = host[4:]
    port = ":%d" % p.port if p.port else ""
    path = p.path.rstrip("/")
    q = urllib.parse.urlencode(query)
    return "%s%s%s%s" % (host, port, path, "?" + q if q else "")


def http(url, timeout, data=None, headers=None):
    """Returns the body (bytes, capped); raises SourceError with a fix."""
    h = {"User-Agent": USER_AGENT}
    h.update(headers or {})
    req = urllib.request.Request(url, data=data, headers=h)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            body = r.read(MAX_BYTES + 1)
    except urllib.error.HTTPError as e:
        hint = {
            401: "check the API key",
            403: "access refused; check the URL or key",
            404: "not found; check the URL",
            429: "rate limited; try later",
        }.get(e.code, "the server failed")
        raise SourceError("HTTP %d from %s (%s)" % (e.code, url, hint))
    except urllib.error.URLError as e:
        raise SourceError("cannot reach %s: %s" % (url, e.reason))
    except (TimeoutError, OSError) as e:
        raise SourceError("no answer from %s within %ss (%s)" % (url, timeout, e))
    if len(body) > MAX_BYTES:
        raise SourceError("%s is larger than %d bytes" % (url, MAX_BYTES))
    return body


def get_json(url, timeout, data=None, headers=None):
    body = http(url, timeout, data, headers)
    try:
        return json.loads(body.decode("utf-8", "replace"))
    except ValueError:
        raise SourceError("%s did not answer JSON; check the base URL" % url)


def local(tag):
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def child(el, name):
    for c in el:
        if local(c.tag) == name:
            return c
    return None


def text_of(el, name):
    c = child(el, name)
    return (c.text or "").strip() if c is not None and c.text else ""


def parse_date(s):
    if not s:
        return None
    try:
        d = email.utils.parsedate_to_datetime(s)
    except (TypeError, ValueError, IndexError):
        d = None
    if d is None:
        try:
            d = datetime.fromisoformat(s.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
    if d.tzinfo is None:
        d = d.replace(tzinfo=timezone.utc)
    return d.timestamp()


def entry_link(e):
    links = [c for c in e if local(c.tag) == "link"]
    for l in links:  # Atom: <link rel="alternate" href="...">
        href = l.get("href")
        if href and l.get("rel", "alternate") == "alternate":
            return href.strip()
    for l in links:  # RSS: <link>url</link>
        if l.text and l.text.strip():
            return l.text.strip()
    for l in links:
        if l.get("href"):
            return l.get("href").strip()
    guid = child(e, "guid")
    if guid is not None and guid.text and guid.get("isPermaLink", "true") != "false":
        if guid.text.strip().startswith("http"):
            return guid.text.strip()
    ident = text_of(e, "id")
    return ident if ident.startswith("http") else ""


def parse_feed(body, url):
    """Returns (feed title, [(title, link, timestamp or None)])."""
    if b"<!ENTITY" in body[:4096]:
        raise SourceError("%s declares XML entities; refusing to parse it" % url)
    try:
        root = ET.fromstring(body)
    except ET.ParseError as e:
        raise SourceError("%s is not an RSS or Atom feed (%s); check the URL" % (url, e))
    title = ""
    for el in [root] + list(root):
        if local(el.tag) in ("channel", "feed"):
            title = clean_title(text_of(el, "title"))
            break
    items = []
    for e in root.iter():
        if local(e.tag) not in ("item", "entry"):
            continue
        link = entry_link(e)
        if not link:
            continue
        link = urllib.parse.urljoin(url, link)
        when = None
        for d in ("pubDate", "published", "updated", "date"):
            when = parse_date(text_of(e, d))
            if when:
                break
        items.append((clean_title(text_of(e, "title")), link, when))
    if not items and local(root.tag) not in ("rss", "feed", "RDF"):
        raise SourceError("%s is not an RSS or Atom feed; check the URL" % url)
    return title, items


def fetch_feed(src, opts):
    body = http(src["url"], opts.timeout)
    title, items = parse_feed(body, src["url"])
    label = src.get("label") or (title if title != "(untitled)" else "") or host_of(src["url"])
    return [(t, label, link, when) for t, link, when in items]


def fetch_hn(src, opts):
    base = src["url"].rstrip("/")
    ids = get_json(base + "/topstories.json", opts.timeout)
    if not isinstance(ids, list):
        raise SourceError("%s/topstories.json is not a list of ids" % base)
    ids = ids[: opts.per_source * 2]

    def item(i):
        try:
            return get_json("%s/item/%s.json" % (base, i), opts.timeout)
        except SourceError:
            return None

    with concurrent.futures.ThreadPoolExecutor(max_workers=5) as pool:
        got = list(pool.map(item, ids))
    out = []
    for it in got:
        if not isinstance(it, dict) or it.get("dead") or it.get("deleted"):
            continue
        if it.get("type", "story") != "story" or not it.get("title"):
            continue
        url = it.get("url") or "https://news.ycombinator.com/item?id=%s" % it.get("id")
        out.append((clean_title(it["title"]), "Hacker News", url, it.get("time")))
    if not out and ids:
        raise SourceError("no Hacker News story could be read from %s" % base)
    return out


def fetch_search(src, opts):
    if not src["query"]:
        raise SourceError("`search` needs a query, e.g. `search raspberry pi news`")
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if opts.search_key:
        headers["Authorization"] = "Bearer " + opts.search_key
    body = json.dumps(
        {"query": src["query"], "max_results": opts.per_source, "topic": "news"}
    ).encode()
    data = get_json(opts.search_url.rstrip("/") + "/search", opts.timeout, body, headers)
    results = data.get("results") if isinstance(data, dict) else None
    if not isinstance(results, list):
        raise SourceError("the search answer has no results list; check search-url")
    out = []
    for r in results:
        if isinstance(r, dict) and r.get("url"):
            out.append((clean_title(r.get("title")), host_of(r["url"]), r["url"], None))
    return out


def parse_source(line):
    words = line.split()
    if not words:
        return None
    kind = words[0].lower()
    if kind == "hn":
        return {"kind": "hn", "url": words[1] if len(words) > 1 else HN_BASE, "name": "hn"}
    if kind == "search":
        q = " ".join(words[1:])
        return {"kind": "search", "query": q, "name": "search %s" % q}
    if kind == "feed":
        words = words[1:]
    if words and re.match(r"https?://", words[0]):
        return {
            "kind": "feed",
            "url": words[0],
            "label": " ".join(words[1:]),
            "name": words[0],
        }
    raise ValueError(
        "cannot read source %r: use a feed URL (http/https), `hn [BASE_URL]` or `search QUERY`"
        % line
    )


def read_config(path, explicit):
    """Returns (source lines, settings)."""
    sources, settings = [], {}
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        if explicit:
            fail_usage("config file %s does not exist" % path)
        return sources, settings
    except OSError as e:
        fail_usage("cannot read %s: %s" % (path, e))
    for n, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key = line.split()[0].lower()
        if key in ("search-url", "search-key-file"):
            value = line[len(key):].strip()
            if not value:
                fail_usage("%s:%d: %s needs a value" % (path, n, key))
            settings[key] = value
        else:
            sources.append((line, "%s:%d" % (path, n)))
    return sources, settings


def join_args(args):
    """Accepts sources split over several arguments: ["search", "rust news"]."""
    out, i = [], 0
    while i < len(args):
        a = args[i].strip()
        if a.lower() in ("search", "feed") and i + 1 < len(args):
            a = a + " " + args[i + 1]
            i += 1
        out.append(a)
        i += 1
    return out


def main():
    home = os.environ.get("HOME", ".")
    ap = argparse.ArgumentParser(
        prog="digest.py",
        description="Print today's top stories from feeds, Hacker News and web search, one line each.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("sources", nargs="*", metavar="SOURCE", help="feed URL, `hn [BASE]` or `search QUERY`")
    ap.add_argument("--config", help="config file (default $HOME/feeds.txt)")
    ap.add_argument("--max", type=int, default=15, help="stories in total (default 15, at most 50)")
    ap.add_argument("--per-source", type=int, default=5, help="stories per source (default 5)")
    ap.add_argument("--hours", type=float, default=0, help="skip dated stories older than this (default: keep all)")
    ap.add_argument("--timeout", type=float, default=10, help="seconds per request (default 10)")
    ap.add_argument("--search-url", help="search API base (overrides search-url in the config)")
    ap.add_argument("--search-key-file", help="API key file (overrides search-key-file in the config)")
    opts = ap.parse_args()
    if not 1 <= opts.max <= 50:
        fail_usage("--max must be between 1 and 50")
    if not 1 <= opts.per_source <= 20:
        fail_usage("--per-source must be between 1 and 20")
    if not 0 < opts.timeout <= 60:
        fail_usage("--timeout must be between 0 and 60 seconds")

    config = opts.config or os.path.join(home, "feeds.txt")
    file_sources, settings = read_config(config, bool(opts.config))
    opts.search_url = opts.search_url or settings.get("search-url") or SEARCH_BASE
    key_file = opts.search_key_file or settings.get("search-key-file")
    opts.search_key = ""
    if key_file:
        kp = key_file if os.path.isabs(key_file) else os.path.join(home, key_file)
        try:
            with open(kp, encoding="utf-8") as f:
                opts.search_key = f.read().strip()
        except OSError as e:
            fail_usage("cannot read the search key file %s (%s); create it with the API key on one line" % (kp, e.strerror))

    lines = [(a, "argument") for a in join_args(opts.sources)] or file_sources
    if not lines:
        fail_usage(
            "no sources: pass them as arguments or list them in %s, one per line, e.g.\n"
            "  https://www.raspberrypi.com/news/feed/\n  hn\n  search rust embedded news" % config
        )
    sources = []
    for line, where in lines:
        try:
            s = parse_source(line)
        except ValueError as e:
            fail_usage("%s: %s" % (where, e))
        if s:
            sources.append(s)
    if any(s["kind"] == "search" for s in sources) and not opts.search_key and opts.search_url == SEARCH_BASE:
        fail_usage(
            "`search` sources need an API key for %s: put it in a file and add "
            "`search-key-file NAME` to %s (or point search-url at a keyless service)" % (SEARCH_BASE, config)
        )

    fetchers = {"feed": fetch_feed, "hn": fetch_hn, "search": fetch_search}

    def run(s):
        try:
            return fetchers[s["kind"]](s, opts), None
        except SourceError as e:
            return [], str(e)
        except Exception as e:  # a broken source must not sink the digest
            return [], "%s: %s" % (type(e).__name__, e)

    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(run, sources))

    cutoff = time.time() - opts.hours * 3600 if opts.hours > 0 else None
    queues = []
    for items, _ in results:
        fresh = [i for i in items if not (cutoff and i[3] and i[3] < cutoff)]
        queues.append(fresh[: opts.per_source])
    seen, picked = set(), []
    depth = 0
    while len(picked) < opts.max and any(depth < len(q) for q in queues):
        for q in queues:
            if depth < len(q) and len(picked) < opts.max:
                title, source, url, _ = q[depth]
                k = url_key(url)
                if k not in seen:
                    seen.add(k)
                    picked.append("- %s — %s — %s" % (title, source, url))
        depth += 1

    failed = [(s["name"], err) for s, (_, err) in zip(sources, results) if err]
    for line in picked:
        print(line)
    for name, err in failed:
        print("! %s: %s" % (name, err))
    print(
        "(%d stories from %d sources%s)"
        % (len(picked), len(sources), "; %d failed" % len(failed) if failed else "")
    )
    return 1 if failed and len(failed) == len(sources) else 0


if __name__ == "__main__":
    sys.exit(main())
