"""The Hub edge (DESIGN §7): `submit` opens a pull request with one results file on a dataset repo,
`publish` builds the leaderboard Space bundle and uploads it; the app downloads results from here.

Torch-free (the app imports it). Every Hub failure becomes one BenchmarkError line. The endpoint is
read per call from TENSION_BENCH_HUB_ENDPOINT or HF_ENDPOINT (huggingface_hub reads HF_ENDPOINT only
once, at import), the token from HF_TOKEN or huggingface_hub's saved login.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from benchmark.errors import BenchmarkError
from benchmark.ids import is_valid_model_id, submission_name

REPO_ROOT = Path(__file__).resolve().parent.parent
APP_DIR = REPO_ROOT / "leaderboard_app"
SUBMISSIONS_DIR = REPO_ROOT / "submissions"
DEFAULT_ENDPOINT = "https://huggingface.co"
ENDPOINT_VARIABLES = ("TENSION_BENCH_HUB_ENDPOINT", "HF_ENDPOINT")
# The Space reads its results dataset from this variable (set on the Space by `publish --results-repo`).
RESULTS_REPO_VARIABLE = "TENSION_BENCH_RESULTS_REPO"
# What of the repository goes into the Space: the app's files at the root, then these folders.
BUNDLE_APP_FILES = ("app.py", "about.py", "populate.py", "table.py", "figures.py", "README.md", "requirements.txt")
BUNDLE_SKIP = shutil.ignore_patterns("__pycache__", "*.pyc", "*.tmp", ".*")


def hub_endpoint() -> str:
    for name in ENDPOINT_VARIABLES:
        value = os.environ.get(name, "").strip()
        if value:
            return value.rstrip("/")
    return DEFAULT_ENDPOINT


def check_repo_id(repo_id: str, what: str) -> str:
    if not is_valid_model_id(repo_id):
        raise BenchmarkError(f"{what} {repo_id!r} is not a Hub repo id (ORG/NAME)")
    return repo_id


def describe_hub_error(exc: BaseException, action: str) -> str:
    """One line a user can act on, whatever huggingface_hub or the network raised."""
    from huggingface_hub.errors import (HfHubHTTPError, LocalTokenNotFoundError, OfflineModeIsEnabled,
                                        RepositoryNotFoundError)

    if isinstance(exc, OfflineModeIsEnabled):
        return f"cannot {action}: HF_HUB_OFFLINE is set; unset it to reach the Hub"
    if isinstance(exc, LocalTokenNotFoundError):
        return f"cannot {action}: no Hugging Face token (set HF_TOKEN or run `hf auth login`)"
    if isinstance(exc, RepositoryNotFoundError):
        return f"cannot {action}: repository not found, or the token has no access to it"
    if isinstance(exc, HfHubHTTPError):
        status = exc.response.status_code if exc.response is not None else None
        if status in (401, 403):
            return (f"cannot {action}: the Hub refused the token (HTTP {status}); "
                    "check HF_TOKEN or `hf auth login`, and its write access")
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return f"cannot {action}: the Hub answered HTTP {status}: {first[:200]}"
    message = " ".join(str(exc).split())[:200] or type(exc).__name__
    return f"cannot {action}: {type(exc).__name__}: {message} (endpoint {hub_endpoint()})"


def _api():
    from huggingface_hub import HfApi, get_token

    if get_token() is None:
        raise BenchmarkError("no Hugging Face token: set HF_TOKEN or run `hf auth login`")
    return HfApi(endpoint=hub_endpoint())


def _call(action: str, fn, *args, **kwargs):
    try:
        return fn(*args, **kwargs)
    except BenchmarkError:
        raise
    except Exception as exc:  # network, auth, server: one line, never a traceback
        raise BenchmarkError(describe_hub_error(exc, action)) from None


# --- submit ----------------------------------------------------------------------------------

def submission_path_in_repo(model_id: str) -> str:
    return f"submissions/{submission_name(model_id)}"


def submit_results(path: Path, model_id: str, repo_id: str) -> str:
    """Open a pull request adding `path` as submissions/<org>__<name>.json on dataset `repo_id`.

    The caller validates the file first; returns the pull request's URL."""
    from huggingface_hub import CommitOperationAdd

    check_repo_id(repo_id, "--repo")
    try:
        content = Path(path).read_bytes()
    except OSError as exc:
        raise BenchmarkError(f"cannot read {path}: {exc.strerror or exc}") from None
    api = _api()
    _call(f"reach the Hub at {api.endpoint}", api.whoami)
    target = submission_path_in_repo(model_id)
    info = _call(
        f"open a pull request on dataset {repo_id}", api.create_commit,
        repo_id=repo_id, repo_type="dataset", create_pr=True,
        operations=[CommitOperationAdd(path_in_repo=target, path_or_fileobj=content)],
        commit_message=f"Add TensionBench results for {model_id}",
        commit_description=f"Adds `{target}`, checked locally with `tension-bench validate`.")
    if not info.pr_url:
        raise BenchmarkError(f"the Hub created no pull request on dataset {repo_id}")
    return info.pr_url


# --- publish ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Bundle:
    folder: Path
    files: tuple[str, ...]      # paths relative to `folder`, POSIX style, sorted


def _copy_tree(source: Path, target: Path) -> None:
    if source.is_dir():
        shutil.copytree(source, target, ignore=BUNDLE_SKIP, symlinks=False, dirs_exist_ok=True)


def build_bundle(target: Path, submissions: Path | None = None) -> Bundle:
    """Write the Space: the app's files at the root (app_file: app.py), the `benchmark/` package
    beside it (with its shipped prompt sets under benchmark/data), `schemas/`, `submissions/` and
    the verified list `maintainers/verified.json` (checked against its schema first)."""
    from benchmark.verified_list import VERIFIED_PATH, read_verified

    target = Path(target)
    submissions = Path(submissions) if submissions is not None else SUBMISSIONS_DIR
    missing = [name for name in BUNDLE_APP_FILES if not (APP_DIR / name).is_file()]
    if missing:
        raise BenchmarkError(f"{APP_DIR / missing[0]} is missing; cannot build the Space")
    if not submissions.is_dir():
        raise BenchmarkError(f"submissions folder {submissions} does not exist")
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise BenchmarkError(f"{target} exists and is not an empty folder")
    read_verified(VERIFIED_PATH)    # a broken list stops the publish, never reaches the Space
    try:
        target.mkdir(parents=True, exist_ok=True)
        for name in BUNDLE_APP_FILES:
            shutil.copy2(APP_DIR / name, target / name)
        _copy_tree(REPO_ROOT / "benchmark", target / "benchmark")
        _copy_tree(REPO_ROOT / "schemas", target / "schemas")
        (target / "submissions").mkdir(exist_ok=True)
        for path in sorted(submissions.iterdir()):
            # only what the leaderboard reads; links are not followed (a link could point anywhere)
            if path.is_file() and not path.is_symlink() and path.suffix == ".json":
                shutil.copy2(path, target / "submissions" / path.name)
        if VERIFIED_PATH.is_file():
            (target / "maintainers").mkdir(exist_ok=True)
            shutil.copy2(VERIFIED_PATH, target / "maintainers" / VERIFIED_PATH.name)
    except OSError as exc:
        raise BenchmarkError(f"cannot write the Space bundle to {target}: {exc.strerror or exc}") from None
    files = tuple(sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file()))
    return Bundle(target, files)


def publish_space(space_id: str, results_repo: str | None = None, submissions: Path | None = None) -> str:
    """Create the gradio Space if missing and upload the bundle as one commit (so the Space
    rebuilds once and never sees half an upload); returns the Space's URL."""
    from huggingface_hub import CommitOperationAdd

    check_repo_id(space_id, "--space")
    if results_repo is not None:
        check_repo_id(results_repo, "--results-repo")
    with tempfile.TemporaryDirectory(prefix="tension-bench-space-") as tmp:
        bundle = build_bundle(Path(tmp) / "space", submissions)
        api = _api()
        _call(f"reach the Hub at {api.endpoint}", api.whoami)
        url = _call(f"create Space {space_id}", api.create_repo, repo_id=space_id, repo_type="space",
                    space_sdk="gradio", exist_ok=True)
        if results_repo is not None:
            _call(f"set {RESULTS_REPO_VARIABLE} on Space {space_id}", api.add_space_variable,
                  repo_id=space_id, key=RESULTS_REPO_VARIABLE, value=results_repo,
                  description="Hub dataset the leaderboard reads submissions/*.json from")
        operations = [CommitOperationAdd(path_in_repo=name, path_or_fileobj=str(bundle.folder / name))
                      for name in bundle.files]
        _call(f"upload to Space {space_id}", api.create_commit, repo_id=space_id, repo_type="space",
              operations=operations, commit_message="Publish the TensionBench leaderboard")
    return str(url)


# --- read side (the app) ---------------------------------------------------------------------

def download_submissions(repo_id: str) -> Path:
    """Fetch submissions/*.json of a results dataset; returns the local folder. (The verified list
    is the app's own maintainers/verified.json, never the dataset's.)"""
    from huggingface_hub import snapshot_download

    check_repo_id(repo_id, RESULTS_REPO_VARIABLE)
    # A fresh folder of plain files: the Hub cache holds symlinks (which the leaderboard refuses to
    # read) and a reused folder would keep files since deleted from the dataset.
    target = tempfile.mkdtemp(prefix="tension-bench-results-")
    folder = _call(f"download results dataset {repo_id}", snapshot_download, repo_id=repo_id,
                   repo_type="dataset", endpoint=hub_endpoint(), local_dir=target,
                   allow_patterns=["submissions/*.json"])
    return Path(folder) / "submissions"
