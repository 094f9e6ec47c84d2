import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from tests import tiny_models  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def tiny_model_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny-models")
    return {arch: tiny_models.build(arch, root / f"tiny-{arch}") for arch in tiny_models.ARCHITECTURES}


@pytest.fixture(params=tiny_models.ARCHITECTURES)
def tiny_model(request, tiny_model_dirs):
    return request.param, tiny_model_dirs[request.param]


@pytest.fixture(scope="session")
def minidata_dir(tmp_path_factory):
    from tests.minidata import write_minidata

    return write_minidata(tmp_path_factory.mktemp("minidata"))


@pytest.fixture(scope="session")
def evaluated_results(tmp_path_factory, minidata_dir):
    """Two results documents from the real pipeline (tiny Llama reward models, seeds 0 and 1,
    probe on) over the minidata prompt sets: {model id: path}. Validate them with data_dir=minidata_dir."""
    from benchmark.evaluate import EvaluateOptions, run_evaluation
    from benchmark.ids import submission_name

    root = tmp_path_factory.mktemp("evaluated")
    found = {}
    for seed, model_id in ((0, "org/tiny-llama-a"), (1, "org/tiny-llama-b")):
        model = tiny_models.build("llama", root / f"model-{seed}", seed=seed)
        _, path = run_evaluation(EvaluateOptions(
            model=str(model), model_id=model_id, data_dir=minidata_dir, probe=True, progress=False,
            output=root / "results" / submission_name(model_id)))
        found[model_id] = path
    return found
