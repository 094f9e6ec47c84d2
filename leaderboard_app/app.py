"""The TensionBench leaderboard (Gradio 6): leaderboard table, trade-off plot, probe views, model
pages, about and submit tabs. Reads results documents through benchmark.leaderboard (every file is
validated; invalid ones are listed, never fatal) and never imports torch.

Run `python -m leaderboard_app.app` in the repository, or `python app.py` in the Space bundle built by
`tension-bench publish` (there app.py, about.py, populate.py, table.py and figures.py sit beside
`benchmark/`). This module only wires Gradio: loading is populate.py, tables table.py, plots figures.py.
Environment: TENSION_BENCH_RESULTS_REPO (a Hub dataset holding submissions/*.json),
TENSION_BENCH_DATA_DIR (prompt-set folder used for validation), GRADIO_SERVER_PORT (default 7860).
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from pathlib import Path
from urllib.parse import quote

import gradio as gr
import pandas as pd

if __package__:
    from leaderboard_app import about, figures, populate, table as tables
else:  # `python app.py` inside the Space bundle: the app's modules and benchmark/ sit beside it
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import about  # type: ignore[no-redef]
    import figures  # type: ignore[no-redef]
    import populate  # type: ignore[no-redef]
    import table as tables  # type: ignore[no-redef]

HERE = Path(__file__).resolve().parent
ROOT = HERE if (HERE / "benchmark").is_dir() else HERE.parent     # the Space bundle, or the repository
DEFAULT_SUBMISSIONS = ROOT / "submissions"
MARKDOWN_SPECIALS = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~&])")


def md_escape(text: str) -> str:
    """Backslash every Markdown/HTML special character so submission text reads literally."""
    return MARKDOWN_SPECIALS.sub(r"\\\1", str(text))


def notice_text(board: populate.Board) -> str:
    source = board.source
    if source.problem:
        lines = [about.SOURCE_FALLBACK.format(repo=md_escape(os.environ.get(populate.RESULTS_REPO_VARIABLE, "")),
                                              reason=md_escape(source.problem))]
    elif source.results_repo:
        lines = [about.SOURCE_DATASET.format(repo=md_escape(source.results_repo))]
    else:
        lines = [about.SOURCE_LOCAL]
    if board.problem:
        lines.append(about.LOAD_FAILED_NOTICE.format(reason=md_escape(board.problem)))
    elif board.table.empty:
        lines.append(about.EMPTY_NOTICE)
    else:
        lines.append(about.LOADED_NOTICE.format(shown=len(board.table)))
    if board.skipped:
        lines.append(about.SKIPPED_NOTICE.format(skipped=len(board.skipped)))
    return "\n\n".join(lines)


def skipped_frame(board: populate.Board) -> pd.DataFrame:
    return pd.DataFrame([[str(name), str(reason)] for name, reason in board.skipped], columns=about.SKIPPED_HEADERS)


def kind_choices(board: populate.Board) -> list[str]:
    return sorted({str(k) for k in board.table["kind"]})


def probe_legend(board: populate.Board, models) -> str:
    return figures.legend_html(models or [], figures.color_map(board.probed_models))


def build_app(submissions_dir: str | os.PathLike | None = None, data_dir: str | os.PathLike | None = None) -> gr.Blocks:
    """The whole page. `submissions_dir` None: the results dataset named by TENSION_BENCH_RESULTS_REPO,
    else the submissions/ folder beside the app. `data_dir` None: TENSION_BENCH_DATA_DIR, else the
    shipped prompt sets."""
    explicit = Path(submissions_dir) if submissions_dir is not None else None
    data_dir = populate.default_data_dir(data_dir)
    files_dir = Path(tempfile.mkdtemp(prefix="tension-bench-app-"))   # CSVs and plots served to the page

    def read_board() -> populate.Board:
        return populate.load_board(populate.resolve_source(DEFAULT_SUBMISSIONS, explicit), data_dir)

    # --- views: plain functions of the board and the controls ---------------------------------
    def table_views(board, search, kinds, size, verified_only):
        selected = tables.filter_table(tables.ranked(board.table), search, kinds, size, verified_only)
        shown = tables.display_table(selected, about.COLUMN_LABELS)
        count = about.SHOWING.format(shown=len(selected), total=len(board.table))
        csv_path = tables.write_once(files_dir, "tensionbench_leaderboard.csv", tables.csv_text(selected))
        svg = figures.pareto_svg(selected, about.PARETO_X, about.PARETO_Y, about.PARETO_BALANCE, about.PARETO_EMPTY,
                                 about.PARETO_BASELINE)
        plot = figures.svg_as_img(svg, about.PARETO_ALT)
        frontier = tables.frontier_table(selected).set_axis(about.FRONTIER_HEADERS, axis=1)
        return shown, count, csv_path, plot, frontier

    def probe_plot(board, models, measure="direction_cosine") -> str:
        curves = figures.probe_curves([(m, board.document_of(m)) for m in models or []], measure)
        svg = figures.probe_svg(curves, figures.color_map(board.probed_models), about.PROBE_X, about.PROBE_Y,
                                about.PROBE_EMPTY)
        return figures.svg_as_img(svg, about.PROBE_PLOT_LABEL)

    def probe_view(board, models, measure):
        return probe_plot(board, models, measure), probe_legend(board, models)

    def ablation_view(board, model):
        frame, summary = tables.ablation_table(board.document_of(model), about.ABLATION_CONDITIONS)
        text = about.ABLATION_SUMMARY.format(**summary) if summary else (about.NO_PROBE if model else "")
        return frame.set_axis(about.ABLATION_HEADERS, axis=1), text

    def model_view(board, model):
        doc, name = board.document_of(model), board.file_of(model)
        if doc is None or name is None:
            empty = pd.DataFrame()
            return "", "", None, empty, empty, empty, empty, empty
        heading = about.MODEL_HEADING.format(model=md_escape(model))
        url = populate.results_file_url(board.source.results_repo, name)
        file_line = (about.FILE_LINK.format(file=md_escape(name), url=quote(url, safe=":/"))
                     if url else about.FILE_LINE.format(file=name.replace("`", "")))
        download = None
        if board.folder is not None:
            try:
                download = tables.write_once(files_dir, name, (Path(board.folder) / name).read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError):
                pass
        summary = tables.summary_table(doc, about.SUMMARY_METRICS).set_axis(about.SUMMARY_HEADERS, axis=1)
        subsets = tables.subsets_table(doc).set_axis(about.SUBSET_HEADERS, axis=1)
        categories = tables.categories_table(doc).set_axis(about.CATEGORY_HEADERS, axis=1)
        probe = tables.probe_summary_table(doc).set_axis(about.PROBE_SUMMARY_HEADERS, axis=1)
        provenance = tables.provenance_table(doc, name).set_axis(about.PROVENANCE_HEADERS, axis=1)
        return heading, file_line, download, summary, subsets, categories, probe, provenance

    def failure_view(board, model, subset, category):
        pairs = board.pairs_of(model)
        if not pairs:
            return (about.NO_PAIR_TEXTS if model else ""), pd.DataFrame(columns=about.FAILURES_HEADERS)
        found = tables.failures(pairs, board.rewards_of(model), subset, category)
        return (about.FAILURES_COUNT.format(total=found.total, shown=len(found.frame)),
                found.frame.set_axis(about.FAILURES_HEADERS, axis=1))

    def disagreement_view(board, model, other, subset, category):
        pairs = board.pairs_of(model)
        if not pairs or not other or other == model:
            return "", pd.DataFrame(columns=about.DISAGREE_HEADERS)
        found = tables.disagreements(pairs, board.rewards_of(model), board.rewards_of(other), model, other,
                                     subset, category)
        return (about.DISAGREE_COUNT.format(total=found.total, shown=len(found.frame)),
                found.frame.set_axis(about.DISAGREE_HEADERS, axis=1))

    def filter_choices(board, model):
        return tables.pair_choices(board.pairs_of(model))

    def default_other(board, model):
        return next((m for m in board.models if m != model), None)

    board = read_board()
    first_model = board.models[0] if board.models else None
    probed = board.probed_models
    initial_table = table_views(board, "", [], "any", False)
    initial_ablation = ablation_view(board, probed[0] if probed else None)
    initial_model = model_view(board, first_model)
    subset_choices, category_choices = filter_choices(board, first_model)
    first_other = default_other(board, first_model)
    initial_failures = failure_view(board, first_model, tables.ALL, tables.ALL)
    initial_disagreement = disagreement_view(board, first_model, first_other, tables.ALL, tables.ALL)

    def text_table(value, **kwargs) -> gr.Dataframe:
        # datatype "str": cells render as text, never as Markdown or HTML
        return gr.Dataframe(value=value, datatype="str", interactive=False, wrap=True, **kwargs)

    with gr.Blocks(title=about.TITLE) as demo:
        state = gr.State(board)
        gr.Markdown(about.INTRODUCTION)
        with gr.Tabs():
            with gr.Tab(about.TAB_LEADERBOARD, id="leaderboard"):
                notice = gr.Markdown(notice_text(board), elem_id="board-notice")
                with gr.Accordion(about.SKIPPED_LABEL, open=True, visible=bool(board.skipped),
                                  elem_id="skipped-files") as skipped_box:
                    skipped = text_table(skipped_frame(board), elem_id="skipped-table", max_height=260,
                                         column_widths=["22%", "78%"])
                with gr.Row():
                    search = gr.Textbox(label=about.SEARCH_LABEL, placeholder=about.SEARCH_PLACEHOLDER,
                                        scale=3, elem_id="model-search")
                    kinds = gr.Dropdown(choices=kind_choices(board), value=[], multiselect=True,
                                        label=about.KIND_LABEL, scale=2, elem_id="kind-filter")
                    size = gr.Dropdown(choices=[(label, key) for key, label in about.SIZE_CHOICES.items()],
                                       value="any", label=about.SIZE_LABEL, scale=1, elem_id="size-filter")
                    verified = gr.Checkbox(label=about.VERIFIED_LABEL, value=False, scale=1,
                                           elem_id="verified-filter")
                showing = gr.Markdown(initial_table[1], elem_id="showing")
                table = gr.Dataframe(value=initial_table[0], datatype=tables.datatypes(),
                                     interactive=False, pinned_columns=2, max_height=640,
                                     elem_id="leaderboard-table", buttons=["fullscreen", "copy"])
                with gr.Row():
                    csv = gr.DownloadButton(about.CSV_LABEL, value=initial_table[2], elem_id="csv-download",
                                            size="md")
                    reload = gr.Button(about.RELOAD_LABEL, size="md", elem_id="reload")
            with gr.Tab(about.TAB_TRADEOFF, id="tradeoff"):
                gr.Markdown(about.TRADEOFF_INTRO)
                # an <img> of a generated SVG: scripts never run inside an image, and every label is escaped
                pareto = gr.HTML(value=initial_table[3], js_on_load=None, elem_id="pareto-plot")
                frontier = text_table(initial_table[4], label=about.FRONTIER_LABEL, elem_id="frontier-table")
            with gr.Tab(about.TAB_PROBE, id="probe"):
                gr.Markdown(about.PROBE_INTRO)
                with gr.Row():
                    probe_models = gr.Dropdown(choices=probed, value=probed[:4], multiselect=True,
                                               label=about.PROBE_MODELS_LABEL, scale=3, elem_id="probe-models")
                    measure = gr.Radio(choices=[(label, key) for key, label in about.PROBE_MEASURES.items()],
                                       value="direction_cosine", label=about.PROBE_MEASURE_LABEL, scale=1)
                # an <img> of a generated SVG with 95% CI error bars; every label is escaped
                curves = gr.HTML(value=probe_plot(board, probed[:4]), js_on_load=None, elem_id="probe-plot")
                legend = gr.HTML(probe_legend(board, probed[:4]), js_on_load=None, elem_id="probe-legend")
                gr.Markdown(about.ABLATION_INTRO)
                ablation_model = gr.Dropdown(choices=probed, value=probed[0] if probed else None,
                                             label=about.ABLATION_MODEL_LABEL, elem_id="ablation-model")
                ablation_summary = gr.Markdown(initial_ablation[1])
                ablation = text_table(initial_ablation[0], elem_id="ablation-table")
            with gr.Tab(about.TAB_MODEL, id="model"):
                gr.Markdown(about.MODEL_PICK)
                model_pick = gr.Dropdown(choices=board.models, value=first_model, label=about.MODEL_LABEL,
                                         elem_id="model-pick")
                heading = gr.Markdown(initial_model[0])
                with gr.Row():
                    file_line = gr.Markdown(initial_model[1], elem_id="model-file")
                    file_download = gr.DownloadButton(about.FILE_DOWNLOAD, value=initial_model[2], size="sm",
                                                      visible=initial_model[2] is not None, elem_id="model-download")
                with gr.Row():
                    summary = text_table(initial_model[3], label=about.SUMMARY_LABEL, elem_id="model-summary")
                    probe_summary = text_table(initial_model[6], label=about.PROBE_SUMMARY_LABEL,
                                               elem_id="model-probe")
                subsets = text_table(initial_model[4], label=about.SUBSETS_LABEL, elem_id="model-subsets")
                categories = text_table(initial_model[5], label=about.CATEGORIES_LABEL, elem_id="model-categories")
                gr.Markdown(about.CATEGORY_NOTE)
                gr.Markdown(about.FAILURES_INTRO)
                with gr.Row():
                    subset_pick = gr.Dropdown(choices=subset_choices, value=tables.ALL, label=about.SUBSET_FILTER_LABEL,
                                              elem_id="failure-subset")
                    category_pick = gr.Dropdown(choices=category_choices, value=tables.ALL,
                                                label=about.CATEGORY_FILTER_LABEL, elem_id="failure-category")
                failure_count = gr.Markdown(initial_failures[0], elem_id="failure-count")
                failure_table = text_table(initial_failures[1], elem_id="failure-table", max_height=640)
                gr.Markdown(about.DISAGREE_INTRO)
                other_pick = gr.Dropdown(choices=board.models, value=first_other, label=about.DISAGREE_LABEL,
                                         elem_id="disagree-pick")
                disagree_count = gr.Markdown(initial_disagreement[0], elem_id="disagree-count")
                disagree_table = text_table(initial_disagreement[1], elem_id="disagree-table", max_height=640)
                provenance = text_table(initial_model[7], label=about.PROVENANCE_LABEL, elem_id="model-provenance",
                                        max_height=520)
            with gr.Tab(about.TAB_ABOUT, id="about"):
                gr.Markdown(about.ABOUT_TEXT, elem_id="about-text")
                calibration = text_table(tables.calibration_table(board.table).set_axis(about.CALIBRATION_HEADERS,
                                                                                        axis=1),
                                         label=about.CALIBRATION_LABEL, elem_id="calibration-table")
            with gr.Tab(about.TAB_SUBMIT, id="submit"):
                gr.Markdown(about.SUBMIT_TEXT, elem_id="submit-text")

        # --- events ------------------------------------------------------------------------------
        filters = [state, search, kinds, size, verified]
        table_outputs = [table, showing, csv, pareto, frontier]
        for control in (search, kinds, size, verified):
            control.change(table_views, inputs=filters, outputs=table_outputs, show_progress="hidden")
        probe_inputs = [state, probe_models, measure]
        probe_models.change(probe_view, inputs=probe_inputs, outputs=[curves, legend], show_progress="hidden")
        measure.change(probe_view, inputs=probe_inputs, outputs=[curves, legend], show_progress="hidden")
        ablation_model.change(ablation_view, inputs=[state, ablation_model], outputs=[ablation, ablation_summary])
        model_outputs = [heading, file_line, file_download, summary, subsets, categories, probe_summary, provenance]

        def model_event(board, model):
            heading, file_line, download, *frames = model_view(board, model)
            return (heading, file_line, gr.DownloadButton(value=download, visible=download is not None), *frames)

        model_pick.change(model_event, inputs=[state, model_pick], outputs=model_outputs)

        def pair_filters_event(board, model):
            subsets_now, categories_now = filter_choices(board, model)
            other = default_other(board, model)
            return (gr.Dropdown(choices=subsets_now, value=tables.ALL),
                    gr.Dropdown(choices=categories_now, value=tables.ALL),
                    gr.Dropdown(choices=board.models, value=other))

        failure_inputs = [state, model_pick, subset_pick, category_pick]
        disagree_inputs = [state, model_pick, other_pick, subset_pick, category_pick]
        failure_outputs, disagree_outputs = [failure_count, failure_table], [disagree_count, disagree_table]
        model_pick.change(pair_filters_event, inputs=[state, model_pick],
                          outputs=[subset_pick, category_pick, other_pick]).then(
            failure_view, inputs=failure_inputs, outputs=failure_outputs).then(
            disagreement_view, inputs=disagree_inputs, outputs=disagree_outputs)
        for control in (subset_pick, category_pick):
            control.input(failure_view, inputs=failure_inputs, outputs=failure_outputs).then(
                disagreement_view, inputs=disagree_inputs, outputs=disagree_outputs)
        other_pick.input(disagreement_view, inputs=disagree_inputs, outputs=disagree_outputs)

        def reloaded():
            fresh = read_board()
            models, probed_now = fresh.models, fresh.probed_models
            return (fresh, notice_text(fresh), gr.Accordion(visible=bool(fresh.skipped)), skipped_frame(fresh),
                    gr.Dropdown(choices=kind_choices(fresh), value=[]),
                    gr.Dropdown(choices=probed_now, value=probed_now[:4]),
                    probe_plot(fresh, probed_now[:4]),
                    gr.Dropdown(choices=probed_now, value=probed_now[0] if probed_now else None),
                    gr.Dropdown(choices=models, value=models[0] if models else None),
                    tables.calibration_table(fresh.table).set_axis(about.CALIBRATION_HEADERS, axis=1))

        reload.click(reloaded, outputs=[state, notice, skipped_box, skipped, kinds, probe_models, curves,
                                        ablation_model, model_pick, calibration]).then(
            table_views, inputs=filters, outputs=table_outputs).then(
            probe_view, inputs=probe_inputs, outputs=[curves, legend]).then(
            ablation_view, inputs=[state, ablation_model], outputs=[ablation, ablation_summary]).then(
            model_event, inputs=[state, model_pick], outputs=model_outputs).then(
            pair_filters_event, inputs=[state, model_pick], outputs=[subset_pick, category_pick, other_pick]).then(
            failure_view, inputs=failure_inputs, outputs=failure_outputs).then(
            disagreement_view, inputs=disagree_inputs, outputs=disagree_outputs)
    return demo


def main() -> None:
    demo = build_app()
    demo.launch(server_name=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))


if __name__ == "__main__":
    main()
