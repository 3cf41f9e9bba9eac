"""Shared fixtures: tiny random-weight models saved like real ones, sample images, shared data."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np
import pytest

TESTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parent
sys.path.insert(0, str(TESTS_DIR))

import tiny_models  # noqa: E402

SAMPLE_IMAGE = REPO_ROOT / "examples" / "truck.jpg"


def shared_data_dir() -> Path:
    """``../shared/data`` beside the repo (or ``$ROBOSAM_DATA``)."""
    return Path(os.environ.get("ROBOSAM_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = shared_data_dir()
    if not path.is_dir():
        pytest.skip(f"shared data not found at {path}")
    return path


@pytest.fixture(scope="session")
def tiny_model_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One ``save_pretrained`` folder per family: {family: folder}."""
    root = tmp_path_factory.mktemp("tiny_models")
    folders = {}
    for family, build in tiny_models.BUILDERS.items():
        folder = root / family
        build().save_pretrained(folder)
        folders[family] = folder
    return folders


@pytest.fixture(scope="session")
def tiny_sam_dir(tiny_model_dirs: dict[str, Path]) -> Path:
    """A folder with a small random-weight SamModel, usable as ``--model`` anywhere."""
    return tiny_model_dirs["sam"]


@pytest.fixture(scope="session")
def sample_image_path() -> Path:
    return SAMPLE_IMAGE


@pytest.fixture
def rgb_image() -> np.ndarray:
    """A non-square (120 x 200) RGB uint8 image: a horizontal gradient and an off-centre rectangle
    (no mirror symmetry, so flipped copies are different images)."""
    image = np.zeros((120, 200, 3), dtype=np.uint8)
    image[:, :, 2] = np.linspace(0, 120, 200, dtype=np.uint8)[None, :]
    image[20:70, 40:150] = (220, 180, 40)
    return image
