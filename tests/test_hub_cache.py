"""Presets resolve through the Hugging Face cache, offline, exactly as after a first online run.

A cache is laid out by hand (``models--owner--name/refs/main`` + ``snapshots/<commit>/``) and robosam runs
in a subprocess with ``HF_HOME`` pointing at it and ``HF_HUB_OFFLINE=1``: nothing can touch the network.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import tiny_models
from helpers import require_peer

COMMIT = "0123456789abcdef0123456789abcdef01234567"
REPO_ROOT = Path(__file__).resolve().parents[1]


def snapshot_dir(hf_home: Path, repo_id: str) -> Path:
    """Create the cache folders for ``repo_id`` and return its snapshot folder."""
    repo = hf_home / "hub" / ("models--" + repo_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(COMMIT)
    snapshot = repo / "snapshots" / COMMIT
    snapshot.mkdir(parents=True, exist_ok=True)
    return snapshot


def run_offline(args: list[str], hf_home: Path, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HOME": str(hf_home), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    return subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=300)


def test_readme_segment_command_with_a_cached_transformers_model(tmp_path, sample_image_path):
    """`robosam segment IMAGE --point 500,375 --model <preset>` with the preset's repo in the cache."""
    hf_home = tmp_path / "hf"
    tiny_models.build_sam().save_pretrained(snapshot_dir(hf_home, "facebook/sam-vit-base"))
    out = tmp_path / "out"
    done = run_offline(
        [sys.executable, "-m", "robosam.cli", "segment", str(sample_image_path), "--point", "500,375",
         "--model", "sam-vit-base", "--out", str(out)],
        hf_home,
        cwd=REPO_ROOT,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert len(json.loads((out / "masks.json").read_text())["masks"]) == 1


def test_preset_repo_with_only_metas_checkpoint_is_converted_on_load(tmp_path):
    """facebook/sam2.1-hiera-* repos may hold only sam2.1_hiera_*.pt: robosam converts it."""
    require_peer("sam2")
    from parity_reference import build_release_sam2, save_sam2

    hf_home = tmp_path / "hf"
    save_sam2(
        build_release_sam2(), snapshot_dir(hf_home, "facebook/sam2.1-hiera-tiny") / "sam2.1_hiera_tiny.pt"
    )
    code = (
        "from robosam.models import load_model; m = load_model('sam2.1-hiera-tiny', device='cpu'); "
        "print(m.family, type(m.model).__name__, m.adapter.input_size)"
    )
    done = run_offline([sys.executable, "-c", code], hf_home, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["sam2", "Sam2Model", "1024"]


def test_preset_not_in_the_cache_is_one_clear_line(tmp_path, sample_image_path):
    done = run_offline(
        [sys.executable, "-m", "robosam.cli", "segment", str(sample_image_path), "--point", "1,1",
         "--model", "sam2.1-hiera-tiny", "--out", str(tmp_path / "o")],
        tmp_path / "empty_hf",
        cwd=REPO_ROOT,
    )  # fmt: skip
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("robosam: error: model:") and "HF_HUB_OFFLINE" in lines[0]
