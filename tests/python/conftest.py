"""Shared fixtures: where the models and goldens are (TERNLM_SHARED_DIR, else ../shared)."""

import os
import pathlib

import pytest

import ternlm

REPO = pathlib.Path(__file__).resolve().parents[2]
SHARED = pathlib.Path(os.environ.get("TERNLM_SHARED_DIR", REPO.parent / "shared"))
MODELS = SHARED / "models"
GOLDEN = SHARED / "golden"
STORIES = MODELS / "stories260K.gguf"


@pytest.fixture(scope="session")
def stories():
    if not STORIES.exists():
        pytest.fail(f"{STORIES} is missing (set TERNLM_SHARED_DIR)")
    with ternlm.Model(STORIES, backend="cpu", n_threads=2) as m:
        yield m
