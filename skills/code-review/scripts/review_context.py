#!/usr/bin/env python3
"""code-review: prints what a review of a branch needs, within a size
budget: the commits, the changed files with line counts, the owner's
written standards (REVIEW.md) and the diff against the base branch
(`git diff BASE...BRANCH`), capped, with the files left out named so they
can be fetched one at a time with --path. Python 3 standard library and git.
"""

import argparse
import os
import re
import subprocess
import sys

EPILOG = """\
examples:
  review_context.py ~/src/app feature/login          against main (or master)
  review_context.py ~/src/app feature/login --base develop
  review_context.py ~/src/app feature/login --path src/auth.py

The standards come from --standards FILE, else $HOME/REVIEW.md (the
workspace). A relative REPO or standards path is taken from $HOME. Lock
files go last in the diff, smaller files first. Exit 2 with a message saying what to fix when
the repository, a branch or the standards file cannot be used.
"""

LOCKFILES = re.compile(r"(^|/)(Cargo\.lock|package-lock\.json|yarn\.lock|pnpm-lock\.yaml|poetry\.lock|go\.sum|composer\.lock|Gemfile\.lock)$|\.min\.(js|css)$")


def fail(msg):
    sys.stderr.write("code-review: %s\n" % msg)
    sys.exit(2)


def git(repo, *args):
    try:
        p = subprocess.run(["git", "-C", repo] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
    except FileNotFoundError:
        fail("git is not installed; install it (apt install git)")
    except subprocess.TimeoutExpired:
        fail("git %s took longer than 30 s" % args[0])
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace").strip()


def ref_exists(repo, ref):
    return git(repo, "rev-parse", "--verify", "--quiet", ref + "^{commit}")[0] == 0


def branches(repo):
    _, out, _ = git(repo, "for-each-ref", "--format=%(refname:short)", "--count=12", "--sort=-committerdate", "refs/heads")
    return ", ".join(out.split()) or "none"


def in_home(path):
    path = os.path.expanduser(path)
    return path if os.path.isabs(path) else os.path.join(os.environ.get("HOME", "."), path)


def cap_text(text, limit):
    """Cuts at a line boundary; returns (text, was_cut)."""
    if len(text.encode("utf-8")) <= limit:
        return text, False
    cut = text.encode("utf-8")[:limit].decode("utf-8", "ignore")
    nl = cut.rfind("\n")
    return (cut[: nl + 1] if nl > 0 else cut), True


def split_diff(diff):
    """[(path, text)] per file of a `git diff` output."""
    parts, cur, path = [], [], None
    for line in diff.splitlines(keepends=True):
        if line.startswith("diff --git "):
            if cur:
                parts.append((path, "".join(cur)))
            cur = [line]
            m = re.match(r"diff --git a/(.*?) b/(.*)$", line.rstrip("\n"))
            path = m.group(2) if m else line[11:].strip()
        else:
            cur.append(line)
    if cur:
        parts.append((path, "".join(cur)))
    return parts


def main():
    ap = argparse.ArgumentParser(
        prog="review_context.py",
        description="Print the commits, file list, standards and capped diff needed to review a branch.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("repo", metavar="REPO", help="path to the git repository")
    ap.add_argument("branch", metavar="BRANCH", nargs="?", default="HEAD", help="branch to review (default: the checked-out one)")
    ap.add_argument("--base", help="branch to compare against (default: main, else master)")
    ap.add_argument("--standards", help="review standards file (default $HOME/REVIEW.md)")
    ap.add_argument("--path", action="append", default=[], help="only this file's diff (repeatable)")
    ap.add_argument("--offset", type=int, default=0, help="with --path: skip this many diff bytes (to page through a long diff)")
    ap.add_argument("--max-bytes", type=int, default=5000, help="diff bytes shown (default 5000, at most 6000: a tool result holds 8 KB)")
    ap.add_argument("--standards-bytes", type=int, default=1500, help="standards bytes shown (default 1500)")
    opts = ap.parse_args()
    if not 200 <= opts.max_bytes <= 6000 or opts.standards_bytes < 100 or opts.offset < 0:
        fail("--max-bytes must be between 200 and 6000, --standards-bytes at least 100, --offset not negative")

    repo = in_home(opts.repo)
    if not os.path.isdir(repo):
        fail("%s is not a directory; pass the path of a git repository" % repo)
    code, _, err = git(repo, "rev-parse", "--git-dir")
    if code != 0:
        fail("%s is not a git repository (%s)" % (repo, err))
    branch = opts.branch
    if not ref_exists(repo, branch):
        fail("branch %r not found in %s; recent branches: %s" % (branch, repo, branches(repo)))
    base = opts.base
    if base is None:
        for cand in ("main", "master", "origin/main", "origin/master"):
            if ref_exists(repo, cand):
                base = cand
                break
        else:
            fail("no main or master branch in %s; pass --base BRANCH (recent branches: %s)" % (repo, branches(repo)))
    elif not ref_exists(repo, base):
        fail("base %r not found in %s; recent branches: %s" % (base, repo, branches(repo)))
    code, mb, err = git(repo, "merge-base", base, branch)
    if code != 0:
        fail("%s and %s share no history (%s)" % (base, branch, err or "no merge base"))
    shown_branch = branch
    if branch == "HEAD":
        _, name, _ = git(repo, "rev-parse", "--abbrev-ref", "HEAD")
        shown_branch = name.strip() or "HEAD"
    rng = "%s...%s" % (base, branch)

    _, log, _ = git(repo, "log", "--no-merges", "--format=%h %s", "%s..%s" % (base, branch))
    commits = [l for l in log.splitlines() if l.strip()]
    _, numstat, _ = git(repo, "diff", "--numstat", "--no-renames", rng)
    _, status, _ = git(repo, "diff", "--name-status", "--no-renames", rng)
    kinds = {}
    for l in status.splitlines():
        p = l.split("\t")
        if len(p) >= 2:
            kinds[p[-1]] = p[0][:1]
    files, adds, dels = [], 0, 0
    for l in numstat.splitlines():
        p = l.split("\t")
        if len(p) < 3:
            continue
        a, d, path = p[0], p[1], p[2]
        if a.isdigit():
            adds += int(a)
            dels += int(d)
            files.append("%s %s +%s -%s" % (kinds.get(path, "M"), path, a, d))
        else:
            files.append("%s %s (binary)" % (kinds.get(path, "M"), path))

    print("# Review: %s against %s (merge base %s)" % (shown_branch, base, mb.strip()[:9]))
    if not files:
        print("No changes between %s and %s: the branch is already merged or empty." % (base, shown_branch))
        return 0
    print("\n## Commits (%d)" % len(commits))
    for l in commits[:15]:
        print("- " + l[:120])
    if len(commits) > 15:
        print("- … and %d more" % (len(commits) - 15))
    print("\n## Files (%d changed, +%d -%d)" % (len(files), adds, dels))
    for l in files[:40]:
        print("- " + l)
    if len(files) > 40:
        print("- … and %d more files" % (len(files) - 40))

    std_path = in_home(opts.standards) if opts.standards else in_home("REVIEW.md")
    try:
        with open(std_path, encoding="utf-8") as f:
            std = f.read().strip()
        std, cut = cap_text(std, opts.standards_bytes)
        print("\n## Standards (%s)" % os.path.basename(std_path))
        print(std.rstrip())
        if cut:
            print("[standards cut at %d bytes; read the file for the rest]" % opts.standards_bytes)
    except FileNotFoundError:
        if opts.standards:
            fail("standards file %s does not exist" % std_path)
        print("\n## Standards")
        print("(no REVIEW.md in the workspace: review for correctness, security, tests and clarity)")
    except OSError as e:
        fail("cannot read standards file %s: %s" % (std_path, e.strerror))

    args = ["diff", "--no-color", "--no-ext-diff", "--no-renames", "-U3", rng]
    if opts.path:
        args += ["--"] + opts.path
    _, diff, err = git(repo, *args)
    parts = split_diff(diff)
    if opts.path and not parts:
        fail("no changes to %s between %s and %s; the changed files are listed above" % (", ".join(opts.path), base, shown_branch))
    # Lock files last, then smallest first: as many files as fit are shown whole.
    parts.sort(key=lambda p: (bool(LOCKFILES.search(p[0] or "")), len(p[1])))
    print("\n## Diff")
    if opts.path or opts.offset:
        return page(parts, opts)
    budget = opts.max_bytes
    shown, partial, left = [], None, []
    for path, text in parts:
        size = len(text.encode("utf-8"))
        if partial is None and not left and size <= budget:
            sys.stdout.write(text)
            budget -= size
            shown.append(path)
        elif partial is None and not left and budget >= 200:
            text, _ = cap_text(text, budget)
            sys.stdout.write(text)
            partial = path
            budget = 0
        else:
            left.append(path)
    if partial or left:
        print("[diff capped at %d bytes]" % opts.max_bytes)
        if partial:
            print("[cut short: %s]" % partial)
        if left:
            more = " and %d more" % (len(left) - 30) if len(left) > 30 else ""
            print("[not shown: %s%s]" % (", ".join(left[:30]), more))
        print("[see a file with --path FILE]")
    return 0


def page(parts, opts):
    """Bytes [offset, offset + max) of the diff, cut at line boundaries."""
    data = "".join(t for _, t in parts).encode("utf-8")
    total = len(data)
    start = min(opts.offset, total)
    if start > 0 and data[start - 1 : start] != b"\n":
        nl = data.find(b"\n", start)
        start = total if nl < 0 else nl + 1
    end = min(start + opts.max_bytes, total)
    if end < total:
        nl = data.rfind(b"\n", start, end)
        if nl >= start:
            end = nl + 1
    sys.stdout.write(data[start:end].decode("utf-8", "replace"))
    if start >= total:
        print("[nothing past byte %d: the diff is %d bytes]" % (opts.offset, total))
    elif end < total:
        print("[diff bytes %d-%d of %d; continue with --offset %d]" % (start, end, total, end))
    elif start > 0:
        print("[diff bytes %d-%d of %d: the end]" % (start, end, total))
    return 0


if __name__ == "__main__":
    sys.exit(main())
