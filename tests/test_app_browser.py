"""The leaderboard app end to end: served on 127.0.0.1 over a fixture submissions folder (two valid
results files from the real pipeline, one hostile-but-valid file, one invalid file) and driven with
headless Debian chromium through Playwright. Also: the app module never imports torch."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from benchmark.ids import submission_name
from tests.conftest import REPO

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
HOSTILE_ID = "org/zz-hostile"
HOSTILE_ARCH = "<img src=x onerror=window.__xss=1>"
HOSTILE_LICENSE = "<script>window.__xss=2</script>"
BAD_ID = "x/<img src=x onerror=alert(1)>"
BASELINE_ID = "tension-bench/baseline-copy"
N_COLUMNS = 20          # leaderboard_app.table.DISPLAY_COLUMNS
SHOTS = Path("/tmp/app_shots")


def app_env(minidata_dir) -> dict:
    env = {**os.environ, "TENSION_BENCH_DATA_DIR": str(minidata_dir), "GRADIO_ANALYTICS_ENABLED": "False",
           "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    env.pop("TENSION_BENCH_RESULTS_REPO", None)
    return env


@pytest.fixture(scope="module")
def board_folder(tmp_path_factory, evaluated_results):
    """Valid: org/tiny-llama-a, org/tiny-llama-b and org/zz-hostile (hostile text in free-text fields,
    which the validator does not recompute, and a 135M parameter count), and a calibration row (a copy
    of tiny-llama-a's rewards marked `baseline`, 0 parameters); invalid: a hostile model id."""
    folder = tmp_path_factory.mktemp("board") / "submissions"
    folder.mkdir()
    for model_id, path in evaluated_results.items():
        shutil.copy(path, folder / submission_name(model_id))
    doc = json.loads(evaluated_results["org/tiny-llama-b"].read_text())
    doc["model"].update(id=HOSTILE_ID, architecture=HOSTILE_ARCH, license=HOSTILE_LICENSE, kind="plugin:my_rm",
                        n_parameters=135_000_000)
    doc["run"]["command"] = 'tension-bench evaluate --model "<img src=x onerror=alert(1)>"'
    (folder / submission_name(HOSTILE_ID)).write_text(json.dumps(doc), encoding="utf-8")
    doc["model"]["id"] = BAD_ID
    (folder / "x__bad.json").write_text(json.dumps(doc), encoding="utf-8")
    baseline = json.loads(evaluated_results["org/tiny-llama-a"].read_text())
    baseline["model"].update(id=BASELINE_ID, kind="plugin:baseline-copy", n_parameters=0, baseline=True)
    (folder / submission_name(BASELINE_ID)).write_text(json.dumps(baseline), encoding="utf-8")
    return folder


def expected_order(folder: Path) -> list[str]:
    """Valid models by balance, best first, ties by model id, then the calibration rows (what the page
    must show)."""
    docs = [json.loads(p.read_text()) for p in folder.glob("*.json") if p.name != "x__bad.json"]
    key = lambda d: (bool(d["model"].get("baseline")), -d["scores"]["balance"], d["model"]["id"])  # noqa: E731
    return [d["model"]["id"] for d in sorted(docs, key=key)]


def lost_pairs(path: Path) -> list[tuple[float, str]]:
    """(margin, pair id) of every pair the results file lost, most negative margin first."""
    items = json.loads(path.read_text())["items"]
    return sorted((i["chosen"] - i["rejected"], i["id"]) for i in items if i["chosen"] <= i["rejected"])


def test_the_app_module_never_imports_torch(board_folder, minidata_dir):
    script = ("import sys; import leaderboard_app.app as app; demo = app.build_app(sys.argv[1]); "
              "bad = [m for m in ('torch', 'transformers') if m in sys.modules]; "
              "assert not bad, bad; print('ok')")
    done = subprocess.run([sys.executable, "-c", script, str(board_folder)], cwd=REPO, env=app_env(minidata_dir),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("ok")


def test_probe_views_carry_intervals_and_the_null(board_folder, minidata_dir):
    """The per-depth plot draws a 95% CI error bar per point; the ablation table shows margin effects
    with intervals and the random-set null; readings follow the CI rule."""
    from leaderboard_app import about, figures, populate, table

    board = populate.load_board(populate.Source(board_folder), str(minidata_dir))
    models = board.probed_models[:2]
    curves = figures.probe_curves([(m, board.document_of(m)) for m in models])
    assert len(curves) and (curves["lo"] <= curves["hi"]).all()
    svg = figures.probe_svg(curves, figures.color_map(models), about.PROBE_X, about.PROBE_Y, about.PROBE_EMPTY)
    assert svg.count("<circle") == len(curves) and svg.count("<line") > 3 * len(curves)
    frame, summary = table.ablation_table(board.document_of(models[0]), about.ABLATION_CONDITIONS)
    assert any(str(c).startswith("null: 200 random block-matched sets") for c in frame["condition"])
    assert "[" in frame["helpful_effect"].iloc[1] and summary["sets"] == 200
    assert "p = " in summary["reading"]
    readings = table.probe_summary_table(board.document_of(models[0]))["reading"].tolist()
    assert all(r == "" or r == "n/a" or r.startswith(("not distinguishable", ">", "<", "paper", "more", "no interval"))
               for r in readings)


def test_an_empty_or_missing_folder_gives_an_empty_board(tmp_path, minidata_dir, monkeypatch):
    from leaderboard_app import populate

    monkeypatch.setenv("TENSION_BENCH_DATA_DIR", str(minidata_dir))
    for folder in (tmp_path, tmp_path / "missing"):
        board = populate.load_board(populate.Source(folder), str(minidata_dir))
        assert board.table.empty and board.problem is None and not board.skipped


def test_corrupt_huge_and_hostile_files_are_skipped_never_fatal(tmp_path, evaluated_results, minidata_dir):
    from leaderboard_app import populate

    folder = tmp_path / "submissions"
    folder.mkdir()
    good = evaluated_results["org/tiny-llama-a"]
    shutil.copy(good, folder / submission_name("org/tiny-llama-a"))
    (folder / "huge.json").write_bytes(b"[" + b"0," * (6 * 1024 * 1024) + b"0]")
    (folder / "latin1.json").write_bytes(b'{"model": "caf\xe9"}')
    (folder / "deep.json").write_text("[" * 200_000 + "]" * 200_000)
    (folder / "nan.json").write_text('{"schema_version": NaN}')
    (folder / "dup.json").write_text('{"a": 1, "a": 2}')
    (folder / "list.json").write_text("[]")
    (folder / "folder.json").mkdir()
    (folder / "link.json").symlink_to(good)
    board = populate.load_board(populate.Source(folder), str(minidata_dir))
    assert list(board.table["model"]) == ["org/tiny-llama-a"]
    skipped = dict(board.skipped)
    assert set(skipped) == {"huge.json", "latin1.json", "deep.json", "nan.json", "dup.json", "list.json",
                            "folder.json", "link.json"}
    assert all(isinstance(reason, str) and reason for reason in skipped.values())


def test_filters_search_kind_size_and_verified(board_folder, minidata_dir):
    from leaderboard_app import figures, populate
    from leaderboard_app import table as tables

    (board_folder.parent / "with-verified").mkdir(exist_ok=True)
    folder = board_folder.parent / "with-verified"
    for path in board_folder.glob("*.json"):
        shutil.copy(path, folder / path.name)
    listed = board_folder.parent / "verified.json"
    listed.write_text(json.dumps([{"model_id": "org/tiny-llama-b", "revision": None, "date": "2026-01-02",
                                   "rescored": {"method": "spot re-score", "sample": 64, "seed": "0123456789abcdef"},
                                   "by": "test", "tension_bench_version": "0.1.0"}]))
    table = populate.load_board(populate.Source(folder), str(minidata_dir), verified_path=listed).table
    models = lambda frame: list(frame["model"])  # noqa: E731
    assert models(tables.filter_table(table, search="LLAMA")) == ["org/tiny-llama-a", "org/tiny-llama-b"]
    assert models(tables.filter_table(table, kinds=["plugin:my_rm"])) == [HOSTILE_ID]
    assert models(tables.filter_table(table, size="lt1b")) == models(table)
    assert models(tables.filter_table(table, size="1b-10b")) == []
    assert models(tables.filter_table(table, verified_only=True)) == ["org/tiny-llama-b"]
    assert tables.human_parameters(40704) == "40.7K" and tables.human_parameters(7.24e9) == "7.24B"
    names = figures.pareto_frontier([("a", 0.9, 0.2), ("b", 0.5, 0.5), ("c", 0.4, 0.4), ("d", 0.2, 0.9)])
    assert names == ["d", "b", "a"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def app_url(board_folder, minidata_dir):
    port = free_port()
    script = ("import sys; from leaderboard_app.app import build_app; "
              "build_app(sys.argv[1]).launch(server_name='127.0.0.1', server_port=int(sys.argv[2]))")
    log = board_folder.parent / "app.log"
    with open(log, "w") as sink:
        process = subprocess.Popen([sys.executable, "-c", script, str(board_folder), str(port)], cwd=REPO,
                                   env=app_env(minidata_dir), stdout=sink, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the app did not start: {log.read_text()[-2000:]}")
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip("Debian chromium is not installed at /usr/bin/chromium (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, app_url):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    page = context.new_page()
    page.dialogs = []
    page.on("dialog", lambda dialog: (page.dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(app_url)
    page.wait_for_selector("#leaderboard-table [role=gridcell]", timeout=60_000)
    yield page
    context.close()


VISIBLE_CELLS_JS = """(selector) => Array.from(document.querySelectorAll(selector + ' [role=gridcell]'))
    .filter((cell) => cell.checkVisibility({checkOpacity: true, checkVisibilityCSS: true}))
    .map((cell) => cell.innerText.trim())"""


def visible_cells(page, selector: str) -> list[str]:
    """One atomic snapshot of the table's visible cells (gradio may keep hidden copies of cells, and
    re-renders a table over several frames, so cells are read in one go, in the page)."""
    return page.evaluate(VISIBLE_CELLS_JS, selector)


def table_rows(page) -> list[list[str]]:
    cells = visible_cells(page, "#leaderboard-table")
    return [cells[i:i + N_COLUMNS] for i in range(0, len(cells), N_COLUMNS)]


def wait_for(predicate, timeout: float = 15.0):
    """The predicate's value once it is truthy twice in a row, 0.3 s apart (a settled page)."""
    deadline, previous = time.monotonic() + timeout, None
    while True:
        value = predicate()
        if value and value == previous:
            return value
        if time.monotonic() > deadline:
            return None
        previous = value
        time.sleep(0.3)


def rows_when(page, check) -> list[list[str]] | None:
    """The table's rows once `check(rows)` holds (the page updates asynchronously), else None."""
    return wait_for(lambda: (lambda rows: rows if check(rows) else None)(table_rows(page)))


def assert_no_script_ran(page) -> None:
    assert page.dialogs == []
    assert page.evaluate("window.__xss") is None
    assert page.locator("img[src='x']").count() == 0
    assert page.locator("script:text('__xss')").count() == 0


def test_table_rows_are_sorted_by_balance_and_the_invalid_file_is_listed(page, board_folder):
    rows = rows_when(page, lambda rows: len(rows) == 4)
    assert rows and all(len(r) == N_COLUMNS for r in rows), table_rows(page)
    assert [r[1] for r in rows] == expected_order(board_folder)
    balances = [float(r[4]) for r in rows[:3]]                          # the models; the baseline after them
    assert balances == sorted(balances, reverse=True)
    assert all(len(r[4].split(".")[1]) == 3 for r in rows)            # three decimals
    assert page.get_by_text("Showing 4 of 4 rows").is_visible()
    skipped = visible_cells(page, "#skipped-table")
    assert "x__bad.json" in skipped
    reason = skipped[skipped.index("x__bad.json") + 1]
    assert BAD_ID in reason                                             # shown literally, as text
    assert_no_script_ran(page)


def test_search_narrows_the_rows(page):
    page.locator("#model-search textarea, #model-search input").first.fill("llama-b")
    rows = rows_when(page, lambda rows: len(rows) == 1)
    assert rows and rows[0][1] == "org/tiny-llama-b", table_rows(page)
    assert page.get_by_text("Showing 1 of 4 rows").is_visible()
    page.locator("#model-search textarea, #model-search input").first.fill("")
    assert rows_when(page, lambda rows: len(rows) == 4)


def test_parameters_sort_as_numbers(page):
    header = page.locator("#leaderboard-table [role=columnheader]").filter(has_text="Parameters").first
    header.hover()
    header.locator("button.cell-menu-button").click(force=True)
    page.get_by_role("menuitem", name="Sort descending").click()
    rows = rows_when(page, lambda rows: rows[0][3] == "135M")
    assert rows, table_rows(page)
    assert [r[3] for r in rows] == ["135M", "40.7K", "40.7K", "0"]     # as text, "40.7K" would sort above "135M"


def test_csv_download_holds_the_current_table(page, board_folder):
    with page.expect_download() as download:
        page.locator("#csv-download").click()
    lines = Path(download.value.path()).read_text().splitlines()
    assert lines[0].startswith("model,kind,parameters,balance")
    assert [line.split(",")[0] for line in lines[1:]] == expected_order(board_folder)


def test_tabs_switch_and_hostile_text_renders_literally(page):
    page.get_by_role("tab", name="About").click()
    assert page.get_by_text("What TensionBench measures").is_visible()
    page.get_by_role("tab", name="Trade-off").click()
    assert page.locator("#pareto-plot img").first.is_visible()
    page.get_by_role("tab", name="Model page").click()
    page.locator("#model-pick input").first.click()
    page.get_by_role("option", name=HOSTILE_ID).click()
    expected = {HOSTILE_ARCH, HOSTILE_LICENSE, submission_name(HOSTILE_ID)}
    provenance = wait_for(lambda: (lambda cells: cells if expected <= set(cells) else None)(
        visible_cells(page, "#model-provenance")))
    assert provenance, visible_cells(page, "#model-provenance")
    assert page.get_by_text(HOSTILE_ARCH, exact=True).first.is_visible()
    assert_no_script_ran(page)


def pick(page, selector: str, option: str) -> None:
    page.locator(f"{selector} input").first.click()
    page.get_by_role("option", name=option, exact=True).click()


def cells_with(page, selector: str, needed: set[str]) -> list[str] | None:
    return wait_for(lambda: (lambda cells: cells if needed <= set(cells) else None)(visible_cells(page, selector)))


def test_baselines_are_listed_after_the_models_marked_and_never_ranked(page):
    rows = rows_when(page, lambda rows: len(rows) == 4)
    assert rows, table_rows(page)
    assert [r[0] for r in rows] == ["1", "2", "3", ""]
    assert rows[-1][1] == BASELINE_ID and rows[-1][18] == "baseline"
    assert all(r[18] == "" for r in rows[:3])
    page.get_by_role("tab", name="About").click()
    assert BASELINE_ID in visible_cells(page, "#calibration-table")


def test_the_pareto_plot_draws_the_baselines_as_reference_lines(page):
    page.get_by_role("tab", name="Trade-off").click()
    plot = page.locator("#pareto-plot img").first
    plot.wait_for(state="visible")
    assert plot.evaluate("(img) => img.complete && img.naturalWidth > 0")
    assert BASELINE_ID not in visible_cells(page, "#frontier-table")
    SHOTS.mkdir(parents=True, exist_ok=True)
    plot.screenshot(path=str(SHOTS / "pareto_with_baselines.png"))


def test_the_failure_view_lists_a_models_worst_lost_pair(page, evaluated_results):
    worst_margin, worst = lost_pairs(evaluated_results["org/tiny-llama-a"])[0]
    page.get_by_role("tab", name="Model page").click()
    pick(page, "#model-pick", "org/tiny-llama-a")
    cells = cells_with(page, "#failure-table", {worst})
    assert cells, visible_cells(page, "#failure-table")
    assert cells[0] == worst                                              # most confidently wrong first
    assert f"{worst_margin:+.4f}" in cells
    total = len(lost_pairs(evaluated_results["org/tiny-llama-a"]))
    assert page.get_by_text(f"{total} lost pair(s) match", exact=False).first.is_visible()
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.locator("#failure-table").screenshot(path=str(SHOTS / "failure_view.png"))
    page.get_by_text("Where this model fails").scroll_into_view_if_needed()
    page.screenshot(path=str(SHOTS / "failure_view_page.png"))


def test_the_two_model_view_lists_the_pairs_they_disagree_on(page, evaluated_results):
    a, b = ({i["id"]: i["chosen"] - i["rejected"] for i in json.loads(evaluated_results[m].read_text())["items"]}
            for m in ("org/tiny-llama-a", "org/tiny-llama-b"))
    disagree = sorted((min(a[k], b[k]), k) for k in a if (a[k] > 0) != (b[k] > 0))
    assert disagree
    page.get_by_role("tab", name="Model page").click()
    pick(page, "#model-pick", "org/tiny-llama-a")
    cells_with(page, "#failure-table", {lost_pairs(evaluated_results["org/tiny-llama-a"])[0][1]})
    pick(page, "#disagree-pick", "org/tiny-llama-b")
    cells = cells_with(page, "#disagree-table", {disagree[0][1]})
    assert cells and cells[0] == disagree[0][1], visible_cells(page, "#disagree-table")
    assert page.get_by_text(f"{len(disagree)} pair(s) on which the two disagree", exact=False).first.is_visible()
