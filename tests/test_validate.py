"""The validator against hostile and broken submissions: one line, exit 1, never a traceback."""

import copy
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from benchmark.cli import main
from benchmark.validate import check_document, validate_file


@pytest.fixture(scope="module")
def valid(tmp_path_factory, tiny_model_dirs, minidata_dir):
    out = tmp_path_factory.mktemp("valid") / "org__model.json"
    assert main(["evaluate", "--model", str(tiny_model_dirs["gpt2"]), "--model-id", "org/model", "--data-dir",
                 str(minidata_dir), "--output", str(out), "--quiet", "--no-resume"]) == 0
    return json.loads(out.read_text())


def run_validate(path, data_dir, capsys):
    code = main(["validate", str(path), "--data-dir", str(data_dir)])
    out = capsys.readouterr().out.strip().splitlines()
    return code, out


def write(tmp_path, doc, name="org__model.json"):
    path = tmp_path / name
    path.write_text(json.dumps(doc) if not isinstance(doc, (str, bytes)) else doc) if not isinstance(doc, bytes) \
        else path.write_bytes(doc)
    return path


def set_path(doc, path, value):
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value


CASES = {
    "malformed JSON": (lambda d: json.dumps(d)[:-20], "malformed JSON"),
    "duplicate keys": (lambda d: '{"schema_version": "1.0", ' + json.dumps(d)[1:], "duplicate key"),
    "NaN": (lambda d: json.dumps(d).replace('"balance": ' + json.dumps(d["scores"]["balance"]), '"balance": NaN', 1),
            "NaN is not allowed"),
    "Infinity": (lambda d: json.dumps(d).replace('"chosen": ' + json.dumps(d["items"][0]["chosen"]), '"chosen": Infinity', 1),
                 "Infinity is not allowed"),
    "out of range": (lambda d: set_path(d, ["scores", "helpful"], 1.5) or d, "scores/helpful"),
    "missing field": (lambda d: (d["run"].pop("seed"), d)[1], "'seed' is a required property"),
    "extra field": (lambda d: d["scores"].update(bonus=1.0) or d, "bonus"),
    "fingerprint": (lambda d: set_path(d, ["benchmark", "prompt_sets_sha256"], "0" * 64) or d, "prompt-set version"),
    "item missing": (lambda d: (d["items"].pop(), d)[1], "is missing"),
    "item duplicated": (lambda d: d["items"].append(dict(d["items"][0])) or d, "appears twice"),
    "item unknown": (lambda d: set_path(d, ["items", 0, "id"], "rh-9999") or d, "not an item"),
    "score mismatch": (lambda d: set_path(d, ["scores", "contrast"], d["scores"]["contrast"] + 1e-4) or d, "scores.contrast"),
    "ci mismatch": (lambda d: set_path(d, ["scores", "subsets", "comply_benign", "ci95"], [0.0, 1.0]) or d, "ci95"),
    "shared fraction": (lambda d: set_path(d, ["probe", "neurons", "shared_fraction"], 1.5) or d, "shared_fraction"),
    "depths": (lambda d: (d["probe"]["depths"].pop(), d)[1], "depths"),
    "tension index": (lambda d: set_path(d, ["probe", "tension_index"], 2.0) or d, "tension_index"),
    "tension index off its layers": (lambda d: set_path(d, ["probe", "tension_index"], -0.01 - d["probe"]["tension_index"])
                                     or d, "probe.tension_index (minus the mean"),
    "interval beside nothing": (lambda d: set_path(d, ["probe", "transfer_ci95"], [0.0, 0.01]) or d, "transfer_ci95"),
    "shared count": (lambda d: set_path(d, ["probe", "neurons", "overlap_p"], 0.5 * d["probe"]["neurons"]["overlap_p"])
                     or d, "overlap_p"),
    "neurons per block": (lambda d: set_path(d, ["probe", "neurons", "helpful"], d["probe"]["neurons"]["helpful"][:-1]
                                             + [d["probe"]["neurons"]["helpful"][0] + 1]) or d, "probe.neurons.helpful"),
    "interference": (lambda d: set_path(d, ["probe", "ablations", "interference"],
                                        d["probe"]["ablations"]["interference"] + 0.01) or d, "interference"),
    "paper bitmap": (lambda d: set_path(d, ["probe", "paper", "helpful_set"], d["probe"]["paper"]["harmless_set"][:-4]
                                        + "AAA=") or d, "probe.paper"),
    "probe version 1": (lambda d: set_path(d, ["probe", "version"], "1") or d, "probe/version"),
    "bad model id": (lambda d: set_path(d, ["model", "id"], "../etc/passwd") or d, "model/id"),
    "older schema": (lambda d: set_path(d, ["schema_version"], "0.9") or d, "not supported"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_broken_documents_are_rejected_in_one_line(case, valid, tmp_path, minidata_dir, capsys):
    mutate, needle = CASES[case]
    path = write(tmp_path, mutate(copy.deepcopy(valid)))
    code, lines = run_validate(path, minidata_dir, capsys)
    assert code == 1 and len(lines) == 1
    assert lines[0].startswith(str(path)) and needle in lines[0], lines[0]


def test_non_utf8_and_huge_files(valid, tmp_path, minidata_dir, capsys):
    path = write(tmp_path, b"\xff\xfe" + json.dumps(valid).encode())
    code, lines = run_validate(path, minidata_dir, capsys)
    assert code == 1 and "not UTF-8" in lines[0]
    huge = tmp_path / "org__huge.json"
    huge.write_bytes(b" " * (10 * 1024 * 1024 + 1))
    code, lines = run_validate(huge, minidata_dir, capsys)
    assert code == 1 and "over the 10 MB limit" in lines[0]


def test_folder_files_must_be_named_after_the_model(valid, tmp_path, minidata_dir, capsys):
    folder = tmp_path / "submissions"
    folder.mkdir()
    write(folder, valid, "org__model.json")
    write(folder, valid, "someone__else.json")
    code = main(["validate", str(folder), "--data-dir", str(minidata_dir)])
    lines = capsys.readouterr().out.strip().splitlines()
    assert code == 1
    assert lines[0].endswith("org__model.json: OK")
    assert "someone__else.json: file name must be org__model.json" in lines[1]


def test_the_valid_document_passes(valid, minidata_dir):
    assert check_document(copy.deepcopy(valid), str(minidata_dir)) is None


def _leaves(value, path=()):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _leaves(v, path + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _leaves(v, path + (i,))
    else:
        yield path, value


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutations_are_rejected_or_still_consistent(valid, minidata_dir, tmp_path, data):
    doc = copy.deepcopy(valid)
    leaves = [(p, v) for p, v in _leaves(doc) if p[0] in ("scores", "probe", "items", "benchmark", "model")]
    path, old = data.draw(st.sampled_from(leaves))
    action = data.draw(st.sampled_from(["nudge", "replace", "delete"]))
    if action == "delete":
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        del parent[path[-1]]
    elif action == "nudge" and isinstance(old, (int, float)) and not isinstance(old, bool):
        set_path(doc, list(path), old + data.draw(st.sampled_from([1e-3, -1e-3, 0.25, -1, 7])))
    else:
        set_path(doc, list(path), data.draw(st.one_of(st.none(), st.booleans(), st.text(max_size=5),
                                                      st.integers(-3, 3), st.floats(allow_nan=False))))
    path_file = tmp_path / "org__model.json"
    path_file.write_text(json.dumps(doc, allow_nan=True))
    verdict = validate_file(path_file, data_dir=str(minidata_dir))     # must never raise
    if verdict.ok:
        # accepted only if every recomputable number still agrees with the items
        assert check_document(doc, str(minidata_dir)) is None
        if path[0] == "scores" and action == "nudge":
            pytest.fail(f"a changed score at {path} was accepted")
