"""The preset registry: names, kinds, families, and parameter counts re-derived from the architectures."""

from __future__ import annotations

import pytest
import torch
import transformers as tf

from robosam.errors import InputError
from robosam.models import KINDS, PRESETS, get_preset, presets_of_kind
from robosam.models.families import ADAPTERS, MODEL_TYPE_TO_FAMILY

DETECTOR_FAMILIES = ("grounding_dino", "mm_grounding_dino", "owlv2", "sam3")


def test_every_preset_has_a_known_family_kind_and_hub_id():
    for name, preset in PRESETS.items():
        assert preset.name == name
        assert preset.kinds and set(preset.kinds) <= set(KINDS)
        assert preset.hub_id.count("/") == 1
        if "detector" in preset.kinds:
            assert preset.family in DETECTOR_FAMILIES
            continue
        assert preset.family in ADAPTERS and preset.family in MODEL_TYPE_TO_FAMILY.values()
        assert preset.input_size in (1008, 1024)
        # a tracker preset's family has a video model in transformers
        assert ("tracker" in preset.kinds) == (ADAPTERS[preset.family].video_model_class is not None)
    assert get_preset("sam2.1-hiera-tiny").checkpoint == "sam2.1_hiera_tiny.pt"


def test_kinds_select_presets():
    assert len(presets_of_kind("segmenter")) == 19  # the 18 SAM presets and MobileSAM
    assert set(presets_of_kind("tracker")) == {
        *(f"sam2{v}-hiera-{s}" for v in ("", ".1") for s in ("tiny", "small", "base-plus", "large")),
        "sam3-tracker",
        "edgetam",
    }
    assert {
        "grounding-dino-tiny",
        "grounding-dino-base",
        "mm-grounding-dino-tiny",
        "owlv2-base",
        "sam3",
    } <= set(presets_of_kind("detector"))
    with pytest.raises(InputError, match="a tracker preset"):
        get_preset("sam-vit-base", kind="tracker")
    with pytest.raises(InputError, match="kind"):
        presets_of_kind("classifier")


def _params_m(model_class: type, config: tf.PretrainedConfig) -> float:
    with torch.device("meta"):
        model = model_class(config)
    return sum(p.numel() for p in model.parameters()) / 1e6


@pytest.mark.parametrize(
    ("name", "model_class", "config"),
    [
        ("sam-vit-base", tf.SamModel, tf.SamConfig()),
        (
            "sam-vit-huge",
            tf.SamModel,
            tf.SamConfig(
                vision_config=dict(
                    hidden_size=1280,
                    num_hidden_layers=32,
                    num_attention_heads=16,
                    global_attn_indexes=[7, 15, 23, 31],
                    mlp_dim=5120,
                )
            ),
        ),
        ("sam2.1-hiera-tiny", tf.Sam2Model, tf.Sam2Config()),
        ("sam3-tracker", tf.Sam3TrackerModel, tf.Sam3TrackerConfig()),
        # transformers' default detector configs are the released tiny / base-patch16 / SAM 3 architectures
        ("grounding-dino-tiny", tf.GroundingDinoForObjectDetection, tf.GroundingDinoConfig()),
        ("mm-grounding-dino-tiny", tf.MMGroundingDinoForObjectDetection, tf.MMGroundingDinoConfig()),
        ("owlv2-base", tf.Owlv2ForObjectDetection, tf.Owlv2Config()),
        ("sam3", tf.Sam3Model, tf.Sam3Config()),
    ],
)
def test_parameter_counts_match_the_architecture(name, model_class, config):
    assert _params_m(model_class, config) == pytest.approx(PRESETS[name].params_m, abs=0.05)
