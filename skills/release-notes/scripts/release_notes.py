#!/usr/bin/env python3
"""release-notes: lists the commits between two git tags of a repository,
sorted into breaking changes, features, fixes and other changes, as a
markdown skeleton for the model to polish. Python 3 standard library and
git only.
"""

import argparse
import os
import re
import subprocess
import sys

EPILOG = """\
examples:
  release_notes.py ~/src/app                 the two newest tags
  release_notes.py ~/src/app v1.2.0          v1.2.0 up to HEAD
  release_notes.py ~/src/app v1.2.0 v1.3.0   between two tags

Commits are classified by their Conventional Commits prefix (feat, fix,
perf, docs, chore, ...; "!" or a BREAKING CHANGE footer marks a breaking
change) and, without a prefix, by keywords ("add", "support" -> feature;
"fix", "bug", "crash" -> fix). Merge commits are left out. A relative REPO
is taken from $HOME (the workspace).
"""

CONVENTIONAL = re.compile(r"^(?P<type>[a-zA-Z]+)(?:\((?P<scope>[^)]*)\))?(?P<bang>!)?:\s*(?P<desc>.+)$")
FEATURE_WORDS = re.compile(r"^(add|adds|added|new|support|supports|implement|implements|introduce|introduces|allow|allows|enable|enables)\b", re.I)
FIX_WORDS = re.compile(r"\b(fix|fixes|fixed|bug|bugfix|crash|crashes|regression|resolve|resolves|resolved|hotfix|correct|corrects|leak|panic)\b", re.I)
OTHER_TYPES = {
    "docs": "docs", "doc": "docs", "chore": "chore", "ci": "ci", "build": "build",
    "test": "tests", "tests": "tests", "refactor": "refactor", "style": "style",
    "perf": "perf", "revert": "revert", "deps": "deps",
}
SUBJECT_CHARS = 120


def fail(msg, code=2):
    sys.stderr.write("release-notes: %s\n" % msg)
    sys.exit(code)


def git(repo, *args):
    try:
        p = subprocess.run(
            ["git", "-C", repo] + list(args),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            timeout=30,
        )
    except FileNotFoundError:
        fail("git is not installed; install it (apt install git)")
    except subprocess.TimeoutExpired:
        fail("git %s took longer than 30 s" % args[0])
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace").strip()


def tags_newest_first(repo):
    code, out, _ = git(repo, "tag", "--list", "--sort=-version:refname", "--sort=-creatordate")
    return [t for t in out.split() if t] if code == 0 else []


def check_ref(repo, ref):
    code, _, _ = git(repo, "rev-parse", "--verify", "--quiet", ref + "^{commit}")
    if code != 0:
        tags = tags_newest_first(repo)[:8]
        known = ", ".join(tags) if tags else "none (create one with `git tag v0.1.0`)"
        fail("%r is not a tag, branch or commit in %s; recent tags: %s" % (ref, repo, known))


def classify(subject, body):
    """Returns (section, text) where section is breaking/features/fixes/other."""
    m = CONVENTIONAL.match(subject)
    breaking = "BREAKING CHANGE" in body or "BREAKING-CHANGE" in body
    if m:
        kind = m.group("type").lower()
        desc = m.group("desc").strip()
        scope = m.group("scope")
        text = "%s: %s" % (scope, desc) if scope else desc
        if m.group("bang") or breaking:
            return "breaking", text
        if kind in ("feat", "feature"):
            return "features", text
        if kind in ("fix", "bugfix", "hotfix"):
            return "fixes", text
        return "other", "%s: %s" % (OTHER_TYPES.get(kind, kind), text)
    if breaking:
        return "breaking", subject
    if FIX_WORDS.search(subject):
        return "fixes", subject
    if FEATURE_WORDS.search(subject):
        return "features", subject
    return "other", subject


def short(s):
    s = " ".join(s.split())
    return s if len(s) <= SUBJECT_CHARS else s[: SUBJECT_CHARS - 1] + "…"


def main():
    ap = argparse.ArgumentParser(
        prog="release_notes.py",
        description="Sort the commits between two git tags into breaking changes, features, fixes and other changes (markdown).",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("repo", metavar="REPO", help="path to the git repository")
    ap.add_argument("start", metavar="FROM", nargs="?", help="older tag (default: the second newest tag)")
    ap.add_argument("end", metavar="TO", nargs="?", help="newer tag or commit (default: the newest tag when FROM is omitted, else HEAD)")
    ap.add_argument("--max", type=int, default=30, help="commits listed per section (default 30)")
    opts = ap.parse_args()
    if opts.max < 1:
        fail("--max must be at least 1")

    repo = os.path.expanduser(opts.repo)
    if not os.path.isabs(repo):
        repo = os.path.join(os.environ.get("HOME", "."), repo)
    if not os.path.isdir(repo):
        fail("%s is not a directory; pass the path of a git repository" % repo)
    code, _, err = git(repo, "rev-parse", "--git-dir")
    if code != 0:
        fail("%s is not a git repository (%s)" % (repo, err))

    start, end = opts.start, opts.end
    if not start:
        tags = tags_newest_first(repo)
        if len(tags) < 2:
            fail("%s has %d tag(s); pass FROM (and TO) explicitly, e.g. a commit hash" % (repo, len(tags)))
        end, start = tags[0], tags[1]
    end = end or "HEAD"
    check_ref(repo, start)
    check_ref(repo, end)

    code, out, err = git(
        repo, "log", "--no-merges", "--format=%h%x1f%an%x1f%s%x1f%b%x1e", "%s..%s" % (start, end)
    )
    if code != 0:
        fail("git log failed: %s" % err)
    sections = {"breaking": [], "features": [], "fixes": [], "other": []}
    authors = set()
    total = 0
    for rec in out.split("\x1e"):
        rec = rec.strip("\n")
        if not rec.strip():
            continue
        parts = rec.split("\x1f")
        if len(parts) < 4:
            continue
        sha, author, subject, body = parts[0], parts[1], parts[2], parts[3]
        total += 1
        authors.add(author)
        section, text = classify(subject.strip(), body)
        sections[section].append("- %s (%s)" % (short(text), sha))

    print("# Release notes: %s → %s" % (start, end))
    print(
        "%d commit%s by %d author%s (merges left out)."
        % (total, "" if total == 1 else "s", len(authors), "" if len(authors) == 1 else "s")
    )
    if total == 0:
        print("\nNo commits between %s and %s; is the order of FROM and TO right?" % (start, end))
        return 0
    titles = [
        ("breaking", "Breaking changes"),
        ("features", "Features"),
        ("fixes", "Fixes"),
        ("other", "Other changes"),
    ]
    for key, title in titles:
        items = sections[key]
        if not items:
            continue
        print("\n## %s" % title)
        for line in items[: opts.max]:
            print(line)
        if len(items) > opts.max:
            print("- … and %d more (raise --max to list them)" % (len(items) - opts.max))
    return 0


if __name__ == "__main__":
    sys.exit(main())
