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
