"""`submit` and `publish` against a loopback stand-in for the Hub endpoints huggingface_hub calls
(whoami, repo creation, Space variables, YAML validation, preupload, NDJSON commit)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from benchmark.cli import main
from benchmark.ids import submission_name
from tests.conftest import REPO

TOKEN = "hf_standin_token"


@dataclass
class Recorded:
    method: str
    path: str
    query: dict
    headers: dict
    body: bytes

    def json(self):
        return json.loads(self.body)

    def ndjson(self) -> list[dict]:
        return [json.loads(line) for line in self.body.splitlines() if line.strip()]


@dataclass
class StandInHub:
    url: str = ""
    requests: list[Recorded] = field(default_factory=list)
    accepted_token: str = TOKEN
    commits: int = 0
    datasets: dict[str, dict[str, bytes]] = field(default_factory=dict)     # repo → path → content

    def calls(self, method: str, pattern: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method and re.fullmatch(pattern, r.path)]

    def committed_files(self, request: Recorded) -> dict[str, bytes]:
        return {op["value"]["path"]: base64.b64decode(op["value"]["content"])
                for op in request.ndjson() if op["key"] == "file"}


def _handler(hub: StandInHub):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep pytest output clean
            pass

        def _reply(self, status: int, payload, raw: bytes | None = None, headers: dict | None = None) -> None:
            data = raw if raw is not None else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json" if raw is None else "application/octet-stream")
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def _handle(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            request = Recorded(self.command, parts.path, parse_qs(parts.query),
                               {k.lower(): v for k, v in self.headers.items()}, body)
            hub.requests.append(request)
            if self.headers.get("Authorization") != f"Bearer {hub.accepted_token}":
                return self._reply(401, {"error": "Invalid credentials in Authorization header"})
            path, base = parts.path, hub.url
            if self.command == "GET" and path == "/api/whoami-v2":
                return self._reply(200, {"type": "user", "name": "tester", "orgs": [{"name": "org"}],
                                         "auth": {"type": "access_token", "accessToken": {"role": "write"}}})
            if self.command == "POST" and path == "/api/repos/create":
                payload = request.json()
                prefix = {"space": "spaces/", "dataset": "datasets/"}.get(payload.get("type"), "")
                return self._reply(200, {"url": f"{base}/{prefix}{payload['organization']}/{payload['name']}"})
            if self.command == "POST" and path == "/api/validate-yaml":
                return self._reply(200, {"errors": [], "warnings": []})
            if self.command == "POST" and re.fullmatch(r"/api/spaces/[^/]+/[^/]+/variables", path):
                payload = request.json()
                return self._reply(200, {payload["key"]: {"value": payload["value"],
                                                          "description": payload.get("description")}})
            match = re.fullmatch(r"/api/(spaces|datasets|models)/([^/]+/[^/]+)/preupload/([^/]+)", path)
            if self.command == "POST" and match:
                files = request.json()["files"]
                return self._reply(200, {"files": [{"path": f["path"], "uploadMode": "regular",
                                                    "shouldIgnore": False, "oid": None} for f in files]})
            match = re.fullmatch(r"/api/(spaces|datasets|models)/([^/]+/[^/]+)/commit/([^/]+)", path)
            if self.command == "POST" and match:
                hub.commits += 1
                kind, repo = match.group(1), match.group(2)
                oid = f"{hub.commits:040x}"
                pr = f"{base}/{kind}/{repo}/discussions/{hub.commits}" if request.query.get("create_pr") else None
                return self._reply(200, {"commitUrl": f"{base}/{kind}/{repo}/commit/{oid}", "commitOid": oid,
                                         "pullRequestUrl": pr})
            match = re.fullmatch(r"/api/datasets/([^/]+/[^/]+)/revision/([^/]+)", path)
            if self.command == "GET" and match and match.group(1) in hub.datasets:
                files = hub.datasets[match.group(1)]
                return self._reply(200, {"id": match.group(1), "sha": "c" * 40, "private": False,
                                         "siblings": [{"rfilename": name} for name in sorted(files)]})
            match = re.fullmatch(r"/api/datasets/([^/]+/[^/]+)/tree/([^/]+)", path)
            if self.command == "GET" and match and match.group(1) in hub.datasets:
                files = hub.datasets[match.group(1)]
                return self._reply(200, [{"type": "file", "path": name, "size": len(content),
                                          "oid": hashlib.sha1(content).hexdigest()}
                                         for name, content in sorted(files.items())])
            match = re.fullmatch(r"/datasets/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path)
            if self.command in ("GET", "HEAD") and match and match.group(3) in hub.datasets.get(match.group(1), {}):
                content = hub.datasets[match.group(1)][match.group(3)]
                etag = hashlib.sha1(content).hexdigest()
                return self._reply(200, None, raw=content, headers={"X-Repo-Commit": "c" * 40, "ETag": f'"{etag}"'})
            return self._reply(404, {"error": f"stand-in has no route for {self.command} {path}"})

        do_GET = do_POST = do_PUT = do_HEAD = _handle

    return Handler


@pytest.fixture
def hub(monkeypatch):
    """The stand-in on a random loopback port; hub.py is pointed at it and online mode is forced for
    huggingface_hub (conftest sets HF_HUB_OFFLINE=1, which huggingface_hub reads once at import)."""
    import huggingface_hub.constants

    state = StandInHub()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("TENSION_BENCH_HUB_ENDPOINT", state.url)
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def submissions(tmp_path, evaluated_results):
    folder = tmp_path / "submissions"
    folder.mkdir()
    for model_id, path in evaluated_results.items():
        shutil.copy(path, folder / submission_name(model_id))
    return folder


def test_publish_creates_a_gradio_space_and_uploads_app_and_submissions(hub, submissions, capsys):
    code = main(["publish", "--space", "org/board", "--results-repo", "org/results",
                 "--submissions", str(submissions)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert f"{hub.url}/spaces/org/board" in out

    assert all(r.headers.get("authorization") == f"Bearer {TOKEN}" for r in hub.requests)
    (create,) = hub.calls("POST", "/api/repos/create")
    assert create.json() == {"name": "board", "organization": "org", "type": "space", "sdk": "gradio"}
    (variable,) = hub.calls("POST", "/api/spaces/org/board/variables")
    assert variable.json()["key"] == "TENSION_BENCH_RESULTS_REPO"
    assert variable.json()["value"] == "org/results"
    assert hub.calls("POST", "/api/spaces/org/board/preupload/main")
    (commit,) = hub.calls("POST", "/api/spaces/org/board/commit/main")
    assert "create_pr" not in commit.query
    assert commit.ndjson()[0]["key"] == "header"
    files = hub.committed_files(commit)
    for name in ("app.py", "about.py", "populate.py", "table.py", "figures.py", "README.md", "requirements.txt",
                 "benchmark/__init__.py", "benchmark/leaderboard.py", "benchmark/validate.py", "benchmark/hub.py",
                 "schemas/results.schema.json", "schemas/verified.schema.json", "maintainers/verified.json"):
        assert name in files, name
    assert files["maintainers/verified.json"] == (REPO / "maintainers" / "verified.json").read_bytes()
    for model_id, name in (("org/tiny-llama-a", "org__tiny-llama-a.json"), ("org/tiny-llama-b", "org__tiny-llama-b.json")):
        assert files[f"submissions/{name}"] == (submissions / name).read_bytes(), model_id
    front_matter = files["README.md"].decode().split("---")[1]
    assert re.search(r"^sdk: gradio$", front_matter, re.M)
    assert re.search(r'^sdk_version: "6\.31\.0"$', front_matter, re.M)
    assert re.search(r"^app_file: app\.py$", front_matter, re.M)
    assert "torch" not in files["requirements.txt"].decode().split("\n", 2)[-1]
    assert not any("__pycache__" in name for name in files)
    # every request went to this Space: nothing else was created or written
    assert not [r for r in hub.requests if "/datasets/" in r.path or "/models/" in r.path]


def test_submit_commits_the_file_to_the_dataset_as_a_pull_request(hub, evaluated_results, minidata_dir, tmp_path,
                                                                   capsys):
    source = evaluated_results["org/tiny-llama-a"]
    local = tmp_path / "my-run.json"          # any local name: the repo path comes from model.id
    shutil.copy(source, local)
    code = main(["submit", str(local), "--repo", "org/results", "--data-dir", str(minidata_dir)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert f"{hub.url}/datasets/org/results/discussions/1" in out

    (preupload,) = hub.calls("POST", "/api/datasets/org/results/preupload/main")
    assert preupload.query.get("create_pr") == ["1"]
    assert [f["path"] for f in preupload.json()["files"]] == ["submissions/org__tiny-llama-a.json"]
    (commit,) = hub.calls("POST", "/api/datasets/org/results/commit/main")
    assert commit.query.get("create_pr") == ["1"]
    assert hub.committed_files(commit) == {"submissions/org__tiny-llama-a.json": local.read_bytes()}
    assert not hub.calls("POST", "/api/repos/create")


def test_a_bad_results_file_fails_the_check_without_any_network_call(hub, evaluated_results, minidata_dir,
                                                                     tmp_path, capsys):
    doc = json.loads(evaluated_results["org/tiny-llama-a"].read_text())
    doc["items"][0]["chosen"] += 5.0          # the rewards no longer give the recorded scores
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc), encoding="utf-8")
    code = main(["submit", str(bad), "--repo", "org/results", "--data-dir", str(minidata_dir)])
    out, _ = capsys.readouterr()
    assert code == 1
    assert out.strip().startswith(f"{bad}: ") and len(out.strip().splitlines()) == 1
    assert hub.requests == []


def test_dry_run_writes_the_bundle_and_it_runs_as_a_space(hub, submissions, minidata_dir, tmp_path, capsys):
    out_dir = tmp_path / "bundle"
    code = main(["publish", "--space", "org/board", "--results-repo", "org/results", "--dry-run", str(out_dir),
                 "--submissions", str(submissions)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert hub.requests == []                 # a dry run never touches the network
    assert "TENSION_BENCH_RESULTS_REPO=org/results" in out
    for name in ("app.py", "about.py", "populate.py", "table.py", "figures.py", "README.md", "requirements.txt",
                 "benchmark/leaderboard.py",
                 "schemas/results.schema.json", "submissions/org__tiny-llama-a.json", "maintainers/verified.json"):
        assert (out_dir / name).is_file(), name
    assert not (out_dir / "leaderboard_app").exists()
    # The bundle imports as the Space runs it (app.py at the root, benchmark/ beside it), reads its
    # own submissions/ and pulls in no torch.
    script = ("import sys, app; demo = app.build_app(); "
              "assert app.__package__ in ('', None) and app.ROOT == app.HERE; "
              "import benchmark; assert benchmark.__file__.startswith(sys.argv[1]), benchmark.__file__; "
              "from benchmark.verified_list import VERIFIED_PATH, read_verified; "
              "assert str(VERIFIED_PATH).startswith(sys.argv[1]) and read_verified(), VERIFIED_PATH; "
              "assert 'torch' not in sys.modules and 'transformers' not in sys.modules; print('ok')")
    env = {**os.environ, "TENSION_BENCH_DATA_DIR": str(minidata_dir), "GRADIO_ANALYTICS_ENABLED": "False",
           "PYTHONPATH": ""}
    env.pop("TENSION_BENCH_RESULTS_REPO", None)
    done = subprocess.run([sys.executable, "-c", script, str(out_dir)], cwd=out_dir, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("ok")


def test_dry_run_refuses_a_folder_that_is_not_empty(tmp_path, submissions, capsys):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.txt").write_text("keep me")
    code = main(["publish", "--space", "org/board", "--dry-run", str(tmp_path / "full"),
                 "--submissions", str(submissions)])
    _, err = capsys.readouterr()
    assert code == 2 and "not an empty folder" in err and len(err.strip().splitlines()) == 1
    assert (tmp_path / "full" / "x.txt").read_text() == "keep me"


def test_a_refused_token_is_one_line_and_exit_2(hub, submissions, capsys):
    hub.accepted_token = "another-token"
    code = main(["publish", "--space", "org/board", "--submissions", str(submissions)])
    _, err = capsys.readouterr()
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "refused the token" in err
    assert not hub.calls("POST", "/api/repos/create")


def test_offline_mode_is_one_line_and_exit_2(hub, evaluated_results, minidata_dir, monkeypatch, capsys):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    code = main(["submit", str(evaluated_results["org/tiny-llama-a"]), "--repo", "org/results",
                 "--data-dir", str(minidata_dir)])
    _, err = capsys.readouterr()
    assert code == 2 and "HF_HUB_OFFLINE" in err and len(err.strip().splitlines()) == 1
    assert hub.requests == []


def test_an_unreachable_hub_is_one_line_and_exit_2(evaluated_results, minidata_dir, monkeypatch, capsys):
    import socket

    import huggingface_hub.constants

    with socket.socket() as probe:           # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("TENSION_BENCH_HUB_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    code = main(["submit", str(evaluated_results["org/tiny-llama-a"]), "--repo", "org/results",
                 "--data-dir", str(minidata_dir)])
    _, err = capsys.readouterr()
    assert code == 2 and "cannot reach the Hub" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("argv", [
    ["submit", "x.json", "--repo", "not a repo"],
    ["publish", "--space", "../evil"],
    ["publish", "--space", "org/board", "--results-repo", "org/"],
])
def test_bad_repo_ids_are_rejected_before_anything_else(argv, capsys):
    assert main(argv) == 2
    _, err = capsys.readouterr()
    assert len(err.strip().splitlines()) == 1 and "repo id" in err


def test_no_token_is_one_line_and_exit_2(hub, submissions, monkeypatch, tmp_path, capsys):
    monkeypatch.delenv("HF_TOKEN")
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))        # no saved login either
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_TOKEN_PATH", str(tmp_path / "hf-home" / "token"))
    monkeypatch.setattr(huggingface_hub.constants, "HF_STORED_TOKENS_PATH", str(tmp_path / "hf-home" / "tokens"))
    code = main(["publish", "--space", "org/board", "--submissions", str(submissions)])
    _, err = capsys.readouterr()
    assert code == 2 and "token" in err and len(err.strip().splitlines()) == 1
    assert hub.requests == []


def test_the_app_reads_submissions_from_the_results_dataset(hub, evaluated_results, minidata_dir, tmp_path,
                                                            monkeypatch):
    import huggingface_hub.constants

    from leaderboard_app import populate

    hub.datasets["org/results"] = {
        "README.md": b"---\nlicense: cc-by-4.0\n---\n",
        "submissions/org__tiny-llama-a.json": evaluated_results["org/tiny-llama-a"].read_bytes(),
        "submissions/verified.txt": b"org/tiny-llama-a\n",       # the dataset cannot vouch for itself
        "maintainers/verified.json": b'[{"model_id": "org/tiny-llama-a"}]',
    }
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    monkeypatch.setenv("TENSION_BENCH_RESULTS_REPO", "org/results")
    source = populate.resolve_source(tmp_path / "bundled")
    assert source.problem is None and source.results_repo == "org/results"
    board = populate.load_board(source, str(minidata_dir))
    assert not board.skipped and not board.problem, (board.skipped, board.problem)
    assert list(board.table["model"]) == ["org/tiny-llama-a"] and not bool(board.table["verified"][0])
    # the mark comes from the app's own maintainers/verified.json
    listed = tmp_path / "verified.json"
    listed.write_text(json.dumps([{"model_id": "org/tiny-llama-a", "revision": None, "date": "2026-01-02",
                                   "rescored": {"method": "full re-run"}, "by": "test",
                                   "tension_bench_version": "0.1.0"}]))
    assert bool(populate.load_board(source, str(minidata_dir), verified_path=listed).table["verified"][0])
    downloaded = {r.path for r in hub.requests if "/resolve/" in r.path}
    assert not any(p.endswith(("README.md", "verified.txt", "verified.json")) for p in downloaded)  # only *.json results
    assert populate.results_file_url(board.source.results_repo, "org__tiny-llama-a.json") == (
        f"{hub.url}/datasets/org/results/blob/main/submissions/org__tiny-llama-a.json")


def test_the_app_falls_back_to_its_own_submissions_when_the_dataset_is_unreachable(hub, tmp_path, monkeypatch):
    from leaderboard_app import populate

    monkeypatch.setenv("TENSION_BENCH_RESULTS_REPO", "org/missing")
    source = populate.resolve_source(tmp_path / "bundled")
    assert source.folder == tmp_path / "bundled" and source.results_repo is None
    assert source.problem and "org/missing" in source.problem
