#!/usr/bin/env python3
"""Which files a submission pull request may change, checked from the base branch's copy of this
script (stdlib only, so it runs before anything is installed and can be tested offline).

Rule: a pull request that changes anything in `submissions/` (other than its README.md) is a
submission PR, and it may only ADD new regular files `submissions/<name>.json` (at most 10 MB each,
not already on the base branch). It fails when it also touches anything else (code, schemas, prompt
sets, workflows, the verified list), or modifies, deletes, renames or re-types an existing results
file: changing a published result needs a maintainer (with --author-association, a PR by an OWNER,
MEMBER or COLLABORATOR may update or delete results files). A PR that is not a submission PR passes
here (code review covers it), except that with --author-association one that touches `maintainers/`
must come from a maintainer.

    check_submission_pr.py BASE HEAD [--repo DIR] [--export DIR] [--author-association ASSOC]

Exit 0 and the PR's submission files, one per line (nothing when there are none); exit 1 and one
line naming the first offending path; exit 2 when git cannot answer. `--export DIR` writes each
submission file's content, read from HEAD's git objects (never from a work tree), into DIR.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

SUBMISSION_RE = re.compile(r"^submissions/[A-Za-z0-9][A-Za-z0-9_.-]*\.json$")
MAX_FILE_BYTES = 10 * 1024 * 1024          # benchmark.validate.MAX_FILE_BYTES (this script imports nothing)
REGULAR_FILE_MODES = ("100644", "100755")
MAINTAINER_ASSOCIATIONS = ("OWNER", "MEMBER", "COLLABORATOR")
EXIT_OK, EXIT_REJECTED, EXIT_GIT_FAILED = 0, 1, 2


class GitError(Exception):
    pass


@dataclass(frozen=True)
class Change:
    status: str          # git's letter: A added, M modified, D deleted, T type changed
    path: str
    new_mode: str        # "000000" for a deletion


def git(repo: Path, *args: str) -> bytes:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True)
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise GitError(f"git {' '.join(args[:2])} failed: {message[0] if message else done.returncode}")
    return done.stdout


def changed_files(repo: Path, base: str, head: str) -> list[Change]:
    """`git diff --raw --no-renames BASE...HEAD`: what HEAD changed since it left BASE. --raw is
    --name-status plus the file modes (a link is mode 120000); --no-renames shows a rename as a
    deletion plus an addition; -z keeps odd file names intact."""
    out = git(repo, "diff", "--raw", "--no-renames", "-z", f"{base}...{head}", "--")
    fields = out.decode("utf-8", "surrogateescape").split("\0")
    changes = []
    for meta, path in zip(fields[0::2], fields[1::2]):
        if not meta:
            continue
        _old_mode, new_mode, _old_sha, _new_sha, status = meta.lstrip(":").split(" ")
        changes.append(Change(status[0], path, new_mode))
    return changes


def exists_at(repo: Path, ref: str, path: str) -> bool:
    done = subprocess.run(["git", "-C", str(repo), "cat-file", "-e", f"{ref}:{path}"], capture_output=True)
    return done.returncode == 0


def blob_size(repo: Path, ref: str, path: str) -> int:
    return int(git(repo, "cat-file", "-s", f"{ref}:{path}").decode().strip())


def is_submission_change(path: str) -> bool:
    return path.startswith("submissions/") and path != "submissions/README.md"


def first_problem(changes: Sequence[Change], author_association: str | None = None) -> str | None:
    """The one line that rejects these changes, or None. Decides from the diff alone."""
    by_maintainer = author_association is not None and author_association.upper() in MAINTAINER_ASSOCIATIONS
    if author_association is not None and not by_maintainer:
        for change in changes:
            if change.path.startswith("maintainers/"):
                return (f"{change.path}: only maintainers change maintainers/ "
                        f"(this PR's author is {author_association or 'unknown'} to the repository)")
    if not any(is_submission_change(c.path) for c in changes):
        return None
    for change in changes:
        if change.path.startswith("maintainers/") or change.path == "submissions/verified.txt":
            return (f"{change.path}: a submission PR cannot change the verified list; maintainers change it "
                    "in a PR that touches no submission")
        if not SUBMISSION_RE.match(change.path):
            return (f"{change.path}: a submission PR may only add submissions/<org>__<name>.json files; "
                    "send changes to anything else in a separate PR")
        if change.status == "D" and not by_maintainer:
            return f"{change.path}: a submission PR cannot delete an existing results file (ask a maintainer)"
        if change.status not in ("A", "D") and not (change.status == "M" and by_maintainer):
            return (f"{change.path}: a submission PR cannot rewrite an existing results file "
                    "(updating a published result needs a maintainer)")
        if change.status != "D" and change.new_mode not in REGULAR_FILE_MODES:
            return f"{change.path}: must be a regular file (mode {change.new_mode})"
    return None


def check(repo: Path, base: str, head: str, author_association: str | None = None) -> tuple[str | None, list[str]]:
    """(the rejecting line or None, the PR's added or updated submission files). Also checks each
    added file against BASE as it is now (added there since the PR branched?) and every file's size."""
    changes = changed_files(repo, base, head)
    problem = first_problem(changes, author_association)
    if problem is not None:
        return problem, []
    submitted = [c for c in changes if is_submission_change(c.path) and c.status != "D"]
    for change in submitted:
        if change.status == "A" and exists_at(repo, base, change.path):
            return f"{change.path}: already exists on the base branch; a submission PR cannot overwrite it", []
        size = blob_size(repo, head, change.path)
        if size > MAX_FILE_BYTES:
            return f"{change.path}: {size / 1e6:.1f} MB, over the {MAX_FILE_BYTES // (1024 * 1024)} MB limit", []
    return None, [c.path for c in submitted]


def export(repo: Path, head: str, files: Sequence[str], target: Path) -> None:
    """Write each file's blob at HEAD into `target` under its base name (the PR is data here)."""
    target.mkdir(parents=True, exist_ok=True)
    for path in files:
        (target / Path(path).name).write_bytes(git(repo, "cat-file", "blob", f"{head}:{path}"))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base", help="the base branch's commit (the PR's target)")
    parser.add_argument("head", help="the pull request's head commit")
    parser.add_argument("--repo", type=Path, default=Path("."), help="the git repository (default: here)")
    parser.add_argument("--export", type=Path, metavar="DIR", help="write the PR's submission files here")
    parser.add_argument("--author-association", help="GitHub's author_association of the PR's author")
    args = parser.parse_args(argv)
    try:
        problem, files = check(args.repo, args.base, args.head, args.author_association)
        if problem is None and args.export is not None:
            export(args.repo, args.head, files, args.export)
    except GitError as exc:
        print(f"check_submission_pr: {exc}", file=sys.stderr)
        return EXIT_GIT_FAILED
    if problem is not None:
        print(problem)
        return EXIT_REJECTED
    for path in files:
        print(path)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
