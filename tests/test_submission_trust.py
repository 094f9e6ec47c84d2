"""Submissions nobody can game: the CI gate (.github/scripts/check_submission_pr.py) on real git
histories, the maintainers' verified list, and `tension-bench verify` on a tiny model's results."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from benchmark.cli import main
from benchmark.errors import BenchmarkError
from tests import tiny_models
from tests.conftest import REPO

SCRIPT = REPO / ".github" / "scripts" / "check_submission_pr.py"
WORKFLOW = REPO / ".github" / "workflows" / "validate-submissions.yml"
GIT_ENV = {**os.environ, "GIT_AUTHOR_NAME": "test", "GIT_AUTHOR_EMAIL": "test@example.org",
           "GIT_COMMITTER_NAME": "test", "GIT_COMMITTER_EMAIL": "test@example.org",
           "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}


# --- the CI gate -----------------------------------------------------------------------------

def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], env=GIT_ENV, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def commit(repo: Path, message: str, write: dict[str, str | None]) -> None:
    """Write (or, for None, delete) files and commit them on the current branch."""
    for name, text in write.items():
        path = repo / name
        if text is None:
            git(repo, "rm", "-q", name)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        git(repo, "add", name)
    git(repo, "commit", "-q", "-m", message)


@pytest.fixture
def repo(tmp_path):
    """A base branch `main` as the project has it: code, the verified list, one published result."""
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    commit(root, "base", {
        "benchmark/validate.py": "def check_document(doc):\n    return 'checked'\n",
        "maintainers/verified.json": "[]\n",
        "submissions/README.md": "How to submit\n",
        "submissions/org__existing.json": '{"model": {"id": "org/existing"}}\n',
    })
    return root


def pr(repo: Path, name: str, write: dict[str, str | None]) -> str:
    """A pull request branch `name` off main with one commit; back on main afterwards."""
    git(repo, "checkout", "-q", "-b", name, "main")
    commit(repo, name, write)
    git(repo, "checkout", "-q", "main")
    return name


def gate(repo: Path, head: str, *extra: str) -> tuple[int, str]:
    done = subprocess.run([sys.executable, str(SCRIPT), "main", head, "--repo", str(repo), *extra],
                          capture_output=True, text=True, timeout=60)
    return done.returncode, (done.stdout + done.stderr).strip()


NEW = '{"model": {"id": "org/new"}}\n'


def test_a_clean_submission_passes_and_is_exported_from_git(repo, tmp_path):
    head = pr(repo, "clean", {"submissions/org__new.json": NEW})
    (repo / "submissions" / "org__new.json").write_text("a work-tree file the export must not read")
    code, out = gate(repo, head, "--export", str(tmp_path / "export"))
    assert code == 0, out
    assert out == "submissions/org__new.json"
    assert [p.name for p in (tmp_path / "export").iterdir()] == ["org__new.json"]
    assert (tmp_path / "export" / "org__new.json").read_text() == NEW


def test_a_submission_with_an_edited_validator_fails_naming_the_path(repo):
    head = pr(repo, "sneaky", {"submissions/org__new.json": NEW,
                               "benchmark/validate.py": "def check_document(doc):\n    return None\n"})
    code, out = gate(repo, head)
    assert code == 1 and len(out.splitlines()) == 1
    assert out.startswith("benchmark/validate.py: ")


@pytest.mark.parametrize("path", ["maintainers/verified.json", "submissions/verified.txt"])
def test_a_submission_that_edits_the_verified_list_fails(repo, path):
    head = pr(repo, "self-verified", {"submissions/org__new.json": NEW, path: '["org/new"]\n'})
    code, out = gate(repo, head)
    assert code == 1 and out.startswith(f"{path}: ") and "verified list" in out


@pytest.mark.parametrize("change, needle", [
    ({"submissions/org__existing.json": '{"model": {"id": "org/existing"}, "better": true}\n'}, "rewrite"),
    ({"submissions/org__existing.json": None}, "delete"),
    ({"submissions/org__existing.json": None, "submissions/org__renamed.json": '{"x": 1}\n'}, "delete"),
])
def test_overwriting_or_deleting_another_models_file_fails(repo, change, needle):
    head = pr(repo, "overwrite", change)
    code, out = gate(repo, head)
    assert code == 1 and out.startswith("submissions/org__existing.json: ") and needle in out


def test_other_escapes_fail(repo):
    head = pr(repo, "nested", {"submissions/deep/org__new.json": NEW})
    assert gate(repo, head)[0] == 1
    # a file added on main after the PR branched: the PR would overwrite it
    head = pr(repo, "late", {"submissions/org__new.json": NEW})
    commit(repo, "someone else first", {"submissions/org__new.json": '{"model": {"id": "org/new"}, "v": 0}\n'})
    code, out = gate(repo, head)
    assert code == 1 and "already exists on the base branch" in out
    # a link instead of a file
    git(repo, "checkout", "-q", "-b", "link", "main")
    (repo / "submissions" / "org__link.json").symlink_to("../benchmark/validate.py")
    git(repo, "add", "submissions/org__link.json")
    git(repo, "commit", "-q", "-m", "link")
    git(repo, "checkout", "-q", "main")
    code, out = gate(repo, "link")
    assert code == 1 and "regular file" in out


def test_maintainers_may_update_results_and_only_they_touch_maintainers(repo):
    update = pr(repo, "update", {"submissions/org__existing.json": '{"model": {"id": "org/existing"}, "v": 2}\n'})
    assert gate(repo, update, "--author-association", "CONTRIBUTOR")[0] == 1
    code, out = gate(repo, update, "--author-association", "MEMBER")
    assert code == 0 and out == "submissions/org__existing.json"
    listing = pr(repo, "verify-new", {"maintainers/verified.json": '[{"model_id": "org/x"}]\n'})
    assert gate(repo, listing, "--author-association", "OWNER") == (0, "")
    code, out = gate(repo, listing, "--author-association", "NONE")
    assert code == 1 and out.startswith("maintainers/verified.json: only maintainers")
    docs = pr(repo, "docs", {"submissions/README.md": "Better instructions\n"})
    assert gate(repo, docs) == (0, "")          # not a submission PR


def test_the_workflow_judges_with_the_base_branch_and_calls_the_script():
    text = "\n".join(line for line in WORKFLOW.read_text(encoding="utf-8").splitlines()
                     if not line.lstrip().startswith("#"))
    assert "pull_request_target" not in text and "secrets." not in text
    assert "ref: ${{ github.event.pull_request.base.sha }}" in text
    assert ".github/scripts/check_submission_pr.py" in text and "--export" in text
    assert "tension-bench validate" in text
    assert "head.sha" not in text and "head.ref" not in text      # the PR's code is never checked out


# --- the verified list -----------------------------------------------------------------------

def test_the_shipped_verified_list_reads_and_names_the_reference_models():
    from benchmark.verified_list import VERIFIED_PATH, is_verified, read_verified

    assert VERIFIED_PATH == REPO / "maintainers" / "verified.json"
    assert not (REPO / "submissions" / "verified.txt").exists()
    records = read_verified()
    assert {r.model_id for r in records} == {f"tension-bench/reference-{o}" for o in ("helpful", "harmless", "mixed")}
    assert all(r.rescored.method == "full re-run" for r in records)
    assert is_verified(records, "tension-bench/reference-mixed", None)
    assert not is_verified(records, "tension-bench/reference-mixed", "0123abc")    # another revision
    assert not is_verified(records, "org/other", None)


RECORD = {"model_id": "org/rm", "revision": "abc123", "date": "2026-01-02",
          "rescored": {"method": "spot re-score", "sample": 64, "seed": "0123456789abcdef"},
          "by": "maintainer", "tension_bench_version": "0.1.0"}


@pytest.mark.parametrize("change", [
    {"date": "yesterday"}, {"by": ""}, {"extra": 1}, {"model_id": "../etc"},
    {"rescored": {"method": "spot re-score", "sample": 64}},           # no seed
    {"rescored": {"method": "full re-run", "sample": 64}},             # a sample is for spot re-scores
    {"rescored": {"method": "looked at it"}},
])
def test_a_broken_verified_list_is_refused(change, tmp_path):
    from benchmark.verified_list import read_verified

    good = tmp_path / "good.json"
    good.write_text(json.dumps([RECORD]))
    assert read_verified(good)[0].rescored.seed == "0123456789abcdef"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{**RECORD, **change}]))
    with pytest.raises(BenchmarkError, match="verified list"):
        read_verified(bad)


def test_the_leaderboard_reports_a_broken_list_and_marks_nobody(tmp_path):
    from benchmark.leaderboard import load_submissions

    bad = tmp_path / "verified.json"
    bad.write_text('[{"model_id": "org/rm"}]')
    subs = load_submissions(tmp_path / "submissions", verified_path=bad)
    assert subs.verified == set() and subs.skipped[0][0] == "maintainers/verified.json"


def test_publish_bundles_the_list_and_refuses_a_broken_one(tmp_path, monkeypatch):
    from benchmark import hub, verified_list

    (tmp_path / "submissions").mkdir()
    bundle = hub.build_bundle(tmp_path / "space", tmp_path / "submissions")
    assert "maintainers/verified.json" in bundle.files
    broken = tmp_path / "verified.json"
    broken.write_text('[{"model_id": "org/self-verified"}]')
    monkeypatch.setattr(verified_list, "VERIFIED_PATH", broken)
    with pytest.raises(BenchmarkError, match="verified list"):
        hub.build_bundle(tmp_path / "space2", tmp_path / "submissions")
    assert not (tmp_path / "space2").exists()


# --- verify ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def honest(tmp_path_factory, tiny_model_dirs, minidata_dir):
    """An honest results file: the tiny Llama RM on the first 3 pairs of each metric key (18 pairs)."""
    out = tmp_path_factory.mktemp("verify") / "org__tiny-verify.json"
    code = main(["evaluate", "--model", str(tiny_model_dirs["llama"]), "--model-id", "org/tiny-verify",
                 "--data-dir", str(minidata_dir), "--no-probe", "--limit", "3", "--batch-size", "8",
                 "--output", str(out), "--cache-dir", str(out.parent / "cache"), "--quiet"])
    assert code == 0
    return out


def verify(path, model, data_dir, capsys, *extra) -> tuple[int, str]:
    code = main(["verify", str(path), "--model", str(model), "--data-dir", str(data_dir), "--quiet", *extra])
    captured = capsys.readouterr()
    return code, (captured.out + captured.err).strip()


def test_an_honest_file_is_verified(honest, tiny_model_dirs, minidata_dir, capsys):
    code, out = verify(honest, tiny_model_dirs["llama"], minidata_dir, capsys)
    assert code == 0, out
    assert len(out.splitlines()) == 1 and ": verified: 18 of 18 pairs" in out and "float32/cpu" in out
    # a smaller sample re-scores in other batches than the run: still within the tolerance
    code, out = verify(honest, tiny_model_dirs["llama"], minidata_dir, capsys, "--sample", "5", "--batch-size", "2")
    assert code == 0 and ": verified: 5 of 18 pairs" in out, out


def _tampered(honest: Path, tmp_path: Path, flip: bool) -> tuple[Path, list[str]]:
    doc = json.loads(honest.read_text())
    items = doc["items"][::6][:3]
    for item in items:
        if flip:     # the loser now wins
            item["chosen"], item["rejected"] = item["rejected"], item["chosen"]
        else:        # a margin widened by 3e-3: far beyond float32/cpu's 1e-4, and no win changes
            side = "chosen" if item["chosen"] >= item["rejected"] else "rejected"
            item[side] += 3e-3
    path = tmp_path / honest.name
    path.write_text(json.dumps(doc, indent=1))
    return path, [item["id"] for item in items]


@pytest.mark.parametrize("flip", [False, True], ids=["no-win-flipped", "wins-flipped"])
def test_three_tampered_rewards_fail_naming_them(honest, tiny_model_dirs, minidata_dir, tmp_path, capsys, flip):
    tampered, ids = _tampered(honest, tmp_path, flip)
    if not flip:
        before = json.loads(honest.read_text())["items"]
        after = json.loads(tampered.read_text())["items"]
        assert [(b["chosen"] > b["rejected"]) == (a["chosen"] > a["rejected"]) for b, a in zip(before, after)] \
            == [True] * len(before)
    code, out = verify(tampered, tiny_model_dirs["llama"], minidata_dir, capsys)
    assert code == 1 and len(out.splitlines()) == 1, out
    assert "NOT verified: 3 of 18 sampled pairs" in out
    assert all(i in out for i in ids)


def test_another_model_of_the_same_shape_fails(honest, tmp_path, minidata_dir, capsys):
    other = tiny_models.build("llama", tmp_path / "other", seed=1)
    code, out = verify(honest, other, minidata_dir, capsys)
    assert code == 1 and "NOT verified" in out


def test_a_model_that_is_not_the_one_described_fails_before_scoring(honest, tiny_model_dirs, minidata_dir, capsys):
    code, out = verify(honest, tiny_model_dirs["gpt2"], minidata_dir, capsys)
    assert code == 1 and "not the one the file describes: model.architecture" in out, out


def test_the_sample_is_seeded_by_the_file_stratified_and_the_same_on_rerun(honest, tiny_model_dirs, minidata_dir,
                                                                            tmp_path):
    from benchmark.verify import VerifyOptions, draw_sample, pairs_of, run_verification, sample_seed

    options = VerifyOptions(file=honest, model=str(tiny_model_dirs["llama"]), sample=6, data_dir=minidata_dir,
                            progress=False)
    first, again = run_verification(options), run_verification(options)
    assert first.ok and first.sample == again.sample and first.seed == again.seed
    raw = honest.read_bytes()
    pairs = pairs_of(json.loads(raw), minidata_dir)
    drawn = draw_sample(pairs, 6, sample_seed(raw))
    assert tuple(p.id for p in drawn) == first.sample
    assert len({p.metric_key for p in drawn}) == 6          # one from each of the six strata
    # other bytes or a maintainer's salt give another seed (and, here, another sample)
    assert sample_seed(raw + b" ") != first.seed and sample_seed(raw, salt="2026-01-02") != first.seed
    samples = {tuple(p.id for p in draw_sample(pairs, 6, sample_seed(raw, salt=str(s)))) for s in range(5)}
    assert len(samples) > 1


def test_allocation_is_proportional_with_one_per_stratum():
    from benchmark.verify import allocate

    assert allocate({"a": 10, "b": 30, "c": 60}, 10, "s") == {"a": 2, "b": 3, "c": 5}
    assert allocate({"a": 10, "b": 30, "c": 60}, 200, "s") == {"a": 10, "b": 30, "c": 60}
    assert sorted(allocate({"a": 10, "b": 30, "c": 60}, 2, "s").values()) == [0, 1, 1]
    quota = allocate({"a": 1, "b": 500, "c": 499}, 64, "s")
    assert quota["a"] == 1 and sum(quota.values()) == 64


def test_remote_code_is_never_taken_from_the_file(honest, tiny_model_dirs, minidata_dir, tmp_path, capsys):
    doc = json.loads(honest.read_text())
    doc["run"]["trust_remote_code"] = True
    path = tmp_path / honest.name
    path.write_text(json.dumps(doc))
    code, out = verify(path, tiny_model_dirs["llama"], minidata_dir, capsys)
    assert code == 2 and "--trust-remote-code" in out and len(out.splitlines()) == 1


def test_a_file_for_other_prompt_sets_is_refused(honest, tiny_model_dirs, minidata_dir, tmp_path, capsys):
    doc = json.loads(honest.read_text())
    doc["benchmark"]["prompt_sets_sha256"] = "0" * 64
    path = tmp_path / honest.name
    path.write_text(json.dumps(doc))
    code, out = verify(path, tiny_model_dirs["llama"], minidata_dir, capsys)
    assert code == 2 and "prompt_sets_sha256" in out


def test_make_verify_calls_tension_bench_verify():
    text = (REPO / "Makefile").read_text(encoding="utf-8")
    assert "\nverify:" in text and "tension-bench verify $(FILE) --model $(MODEL)" in text
    assert shutil.which("make") is None or subprocess.run(
        ["make", "-n", "verify", "FILE=x.json", "MODEL=org/m"], cwd=REPO, capture_output=True, text=True,
        timeout=60).stdout.count("verify x.json --model org/m") == 1
