"""Family facts checked against transformers' own processors: preprocessing constants, pixels, prompt frames."""

from __future__ import annotations

import numpy as np
import pytest
import transformers as tf

from robosam.models.families import ADAPTERS, MODEL_TYPE_TO_FAMILY, family_of_model_type
from robosam.segmenter import Segmenter


def reference_processor(family: str, size: int):
    """transformers' processor for the family at input ``size`` (image processor with its defaults)."""
    if family == "sam3_tracker":
        return tf.Sam3TrackerProcessor(
            image_processor=tf.Sam3ImageProcessor(size={"height": size, "width": size})
        )
    if family in ("sam2", "edgetam"):  # transformers maps edgetam to the SAM 2 image processor
        return tf.Sam2Processor(image_processor=tf.Sam2ImageProcessor(size={"height": size, "width": size}))
    image_processor = tf.SamImageProcessor(
        size={"longest_edge": size}, pad_size={"height": size, "width": size}
    )
    return (tf.SamHQProcessor if family == "sam_hq" else tf.SamProcessor)(image_processor=image_processor)


@pytest.mark.parametrize("family", ["sam", "sam_hq", "sam2", "sam3_tracker", "edgetam"])
def test_preprocessing_and_prompt_frame_match_transformers_processors(tiny_model_dirs, family, rgb_image):
    seg = Segmenter(tiny_model_dirs[family], device="cpu")
    adapter = seg.adapter
    reference = reference_processor(family, adapter.input_size)
    ours, theirs = adapter.image_processor, reference.image_processor
    np.testing.assert_allclose(ours.image_mean, theirs.image_mean)
    np.testing.assert_allclose(ours.image_std, theirs.image_std)
    expected_std = (0.5, 0.5, 0.5) if family == "sam3_tracker" else (0.229, 0.224, 0.225)
    np.testing.assert_allclose(adapter.image_std, expected_std)
    assert adapter.input_size == (112 if family == "sam3_tracker" else 128)

    points, box = np.array([[100.0, 60.0]]), np.array([40.0, 20.0, 160.0, 100.0])
    out = reference(
        images=rgb_image,
        input_points=[[points.tolist()]],
        input_labels=[[[1]]],
        input_boxes=[[box.tolist()]],
        return_tensors="pt",
    )
    geometry = adapter.geometry(rgb_image.shape[:2])
    np.testing.assert_allclose(
        geometry.to_model(points), out["input_points"].reshape(1, 2).numpy(), rtol=1e-5
    )
    np.testing.assert_allclose(
        geometry.to_model(box.reshape(2, 2)).reshape(4), out["input_boxes"].reshape(4).numpy(), rtol=1e-5
    )
    # pixels in normalised units: SAM 1's PIL resize is transformers' own (measured max 1.4e-5 grey levels);
    # SAM 2 families resize floats as Meta does where transformers resizes uint8 (measured max 0.66 grey levels)
    ours_pixels = adapter.preprocess([rgb_image]).numpy()
    assert ours_pixels.shape == tuple(out["pixel_values"].shape)
    grey_level = 1.0 / 255.0 / min(expected_std)
    diff = np.abs(ours_pixels - out["pixel_values"].numpy()).max() / grey_level
    assert diff < (1e-3 if adapter.padded else 1.0)


def test_every_transformers_sam_model_type_has_one_family():
    assert MODEL_TYPE_TO_FAMILY["sam2_video"] == "sam2"
    assert MODEL_TYPE_TO_FAMILY["sam3_tracker_video"] == "sam3_tracker"
    assert MODEL_TYPE_TO_FAMILY["edgetam_video"] == "edgetam"
    for family, adapter in ADAPTERS.items():
        assert adapter.name == family
        assert family_of_model_type(adapter.model_class().config_class.model_type) == family
        if adapter.video_model_class:
            assert family_of_model_type(adapter.model_class(video=True).config_class.model_type) == family
