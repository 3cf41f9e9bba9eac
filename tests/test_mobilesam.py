"""MobileSAM parity with the reference ``mobile_sam`` package (``mobilesam-mirror``): a small TinyViT built and
saved by the reference code in the official ``mobile_sam.pt`` format (a bare state dict), loaded through robosam.

The reference TinyViT only runs at 1024 x 1024 (its ``forward_features`` reshapes to a fixed 64 x 64 grid) and
its neck is fixed at 256 channels, so the model is the release's layout at small widths and depth 1 per stage.
1. model: same pixels -> same image embedding, low-res logits and IoU scores;
2. predictor: ``mobile_sam.SamPredictor`` vs ``Segmenter.predict`` on truck.jpg, every prompt case:
   masks IoU >= 0.999, scores within 1e-4 (the issue's bar), logits near float noise;
3. the family works behind robosam's API: preset, save_pretrained / load folder, automatic masks, encoder and
   prompt-decoder modules, strict key mapping.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from helpers import require_peer
from parity_reference import CASES, compare, randomize

with warnings.catch_warnings():  # the reference re-registers timm's TinyViT names and imports old timm paths
    warnings.simplefilter("ignore")
    require_peer("mobile_sam")

IOU_MIN = 0.999
SCORE_TOL = 1e-4
LOGIT_TOL = 2e-5  # 3.8e-6 measured end to end (scores 5.4e-7, IoU 0.999995): float32 noise only
SMALL = {"embed_dims": [8, 16, 24, 320], "depths": [1, 1, 1, 1], "num_heads": [1, 1, 2, 4]}


def build_reference(seed: int = 0) -> torch.nn.Module:
    """``mobile_sam.modeling.Sam`` as ``build_sam_vit_t`` builds it, at small stage widths (the last stays 320:
    the reference gives its last patch merging stride 1 only for widths 320 / 448 / 576), random weights."""
    from mobile_sam.modeling import MaskDecoder, PromptEncoder, Sam, TinyViT, TwoWayTransformer

    sam = Sam(
        image_encoder=TinyViT(
            img_size=1024,
            in_chans=3,
            num_classes=1000,
            window_sizes=[7, 7, 14, 7],
            mlp_ratio=4.0,
            drop_path_rate=0.0,
            mbconv_expand_ratio=4.0,
            local_conv_size=3,
            **SMALL,
        ),
        prompt_encoder=PromptEncoder(
            embed_dim=256, image_embedding_size=(64, 64), input_image_size=(1024, 1024), mask_in_chans=16
        ),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=3,
            transformer=TwoWayTransformer(depth=2, embedding_dim=256, mlp_dim=64, num_heads=8),
            transformer_dim=256,
            iou_head_depth=3,
            iou_head_hidden_dim=32,
        ),
        pixel_mean=[123.675, 116.28, 103.53],
        pixel_std=[58.395, 57.12, 57.375],
    )
    randomize(sam, seed)
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():  # BatchNorm statistics: a positive variance, a mean that is not zero
        for name, tensor in sam.state_dict().items():
            if name.endswith("running_var"):
                tensor.copy_(0.5 + torch.rand(tensor.shape, generator=generator))
    return sam.eval()  # eval() again: the reference caches its attention bias table there


@pytest.fixture(scope="module")
def reference_model() -> torch.nn.Module:
    return build_reference()


@pytest.fixture(scope="module")
def checkpoint(reference_model, tmp_path_factory):
    path = tmp_path_factory.mktemp("mobilesam") / "mobile_sam.pt"
    torch.save(reference_model.state_dict(), path)
    return path


@pytest.fixture(scope="module")
def model(checkpoint):
    from robosam.models.checkpoints import load_official_checkpoint

    return load_official_checkpoint(checkpoint)


@pytest.fixture(scope="module")
def image(sample_image_path) -> np.ndarray:
    from robosam.io import load_image

    return load_image(sample_image_path)


@pytest.fixture(scope="module")
def predictors(reference_model, model, image):
    from mobile_sam import SamPredictor

    from robosam.segmenter import Segmenter

    reference = SamPredictor(reference_model)
    reference.set_image(image)
    seg = Segmenter(model, device="cpu")
    seg.set_image(image)
    return reference, seg


def test_checkpoint_converts_with_every_key_mapped(checkpoint, model):
    from robosam.models import convert_mobilesam
    from robosam.models.checkpoints import describe, read_state_dict

    state = read_state_dict(checkpoint)
    assert convert_mobilesam.is_mobilesam(state)
    weights, unmapped = convert_mobilesam.convert_state(state)
    assert unmapped == []
    dropped = {key for key in state if key.startswith(("image_encoder.head.", "image_encoder.norm_head."))}
    assert len(dropped) == 4  # the ImageNet classifier, never run by MobileSAM
    assert type(model).__name__ == "MobileSamModel"
    assert model.config.tiny_vit_config["merge_strides"] == [2, 2, 1]
    assert model.config.tiny_vit_config["window_sizes"][1:] == [7, 14, 7]
    assert describe(model) == "MobileSAM TinyViT 8/16/24/320"


def test_unknown_key_is_refused(checkpoint, tmp_path):
    from robosam.errors import InputError
    from robosam.models.checkpoints import load_official_checkpoint, read_state_dict

    state = read_state_dict(checkpoint)
    for extra, message in (
        ("image_encoder.extra_norm.weight", "unmapped keys image_encoder.extra_norm.weight"),
        (
            "image_encoder.layers.1.blocks.0.attn.extra",
            "unexpected vision_encoder.layers.1.blocks.0.attn.extra",
        ),
    ):
        torch.save({**state, extra: torch.zeros(2)}, tmp_path / "bad.pt")
        with pytest.raises(InputError, match=message):
            load_official_checkpoint(tmp_path / "bad.pt")


def test_model_outputs_match_on_the_same_tensors(reference_model, model):
    pixels = torch.randn(1, 3, 1024, 1024, generator=torch.Generator().manual_seed(1))
    points = torch.tensor([[[200.0, 240.0], [480.0, 800.0]]])
    labels = torch.tensor([[1, 0]])
    box = torch.tensor([[120.0, 160.0, 800.0, 720.0]])
    with torch.no_grad():
        ours = model.get_image_embeddings(pixels)
        theirs = reference_model.image_encoder(pixels)
        assert ours.shape == theirs.shape == (1, 256, 64, 64)
        assert (ours - theirs).abs().max() < 2e-5  # 5.5e-6 measured (mean |embedding| 0.78)
        for meta_points, meta_box in (((points, labels), None), (None, box), ((points, labels), box)):
            sparse, dense = reference_model.prompt_encoder(points=meta_points, boxes=meta_box, masks=None)
            logits, scores = reference_model.mask_decoder(
                image_embeddings=theirs,
                image_pe=reference_model.prompt_encoder.get_dense_pe(),
                sparse_prompt_embeddings=sparse,
                dense_prompt_embeddings=dense,
                multimask_output=True,
            )
            out = model(
                image_embeddings=ours,
                input_points=points[None] if meta_points else None,
                input_labels=labels[None] if meta_points else None,
                input_boxes=meta_box[None] if meta_box is not None else None,
                multimask_output=True,
            )
            assert (out.pred_masks[0] - logits).abs().max() < 2e-5
            assert (out.iou_scores[0] - scores).abs().max() < 1e-5


# every prompt case with multimask output, two with a single mask (the rest of that grid adds no new path)
PREDICTOR_CASES = [(case, True) for case in CASES] + [("box", False), ("mask input", False)]


@pytest.mark.parametrize(("case", "multimask"), PREDICTOR_CASES)
def test_predictor_agrees_with_mobile_sam_predictor(predictors, case, multimask):
    reference, seg = predictors
    agreement = compare(reference, seg, case, multimask)
    assert agreement.num_masks == (3 if multimask else 1)
    assert agreement.min_iou >= IOU_MIN, agreement
    assert agreement.max_score_diff <= SCORE_TOL, agreement
    assert agreement.max_logit_diff <= LOGIT_TOL, agreement


def test_folder_round_trip_and_family_api(model, image, tmp_path):
    from robosam.automatic import AutoMasker
    from robosam.models import load_model
    from robosam.models.checkpoints import save_converted
    from robosam.segmenter import Segmenter

    folder = save_converted(model, tmp_path / "mobilesam")
    loaded = load_model(str(folder), device="cpu")
    assert loaded.adapter.name == "mobilesam"
    assert type(loaded.adapter.image_processor).__name__ == "SamImageProcessorPil"
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[key], value), key

    seg = Segmenter(loaded, device="cpu")
    emb = seg.embed(image)
    assert emb.features.shape == (1, 256, 64, 64)
    result = seg.decode(emb, points=[(500, 375)], labels=[1])
    assert result.masks.shape == (3, 1200, 1800)
    encoder = seg.adapter.encoder_module()
    decoder = seg.adapter.prompt_decoder_module(multimask=False)
    with torch.no_grad():
        pixels = seg.adapter.preprocess([image])
        features = encoder(pixels)
        logits, scores = decoder(features, torch.tensor([[[100.0, 120.0]]]), torch.tensor([[1]]))
    assert logits.shape == (1, 1, 256, 256) and scores.shape == (1, 1)

    masks = AutoMasker(seg, points_per_side=2, pred_iou_thresh=0.0, stability_score_thresh=0.0).generate(
        image
    )
    assert masks.masks.shape[1:] == (1200, 1800)


def test_preset_names_the_official_file():
    from robosam.models.registry import get_preset

    preset = get_preset("mobilesam", "segmenter")
    assert preset.family == "mobilesam"
    assert preset.checkpoint == "mobile_sam.pt"


def test_onnx_export_runs_like_pytorch(model, image, tmp_path):
    require_peer("onnxruntime")
    from robosam.export.onnx_export import export_onnx
    from robosam.models import load_model
    from robosam.segmenter import Segmenter

    loaded = load_model(model, device="cpu")
    manifest = export_onnx(loaded, tmp_path / "onnx", dtypes=("float32",))
    assert manifest["family"] == "mobilesam"
    exported, reference = (
        Segmenter(str(tmp_path / "onnx"), device="cpu"),
        Segmenter(loaded, fast_decoder=False),
    )
    fast = Segmenter(loaded)  # MobileSAM has SAM 1's decoder: the fast decoder serves it
    assert fast.fast is not None
    ours = exported.decode(exported.embed(image), points=[(500, 375)], labels=[1])
    theirs = reference.decode(reference.embed(image), points=[(500, 375)], labels=[1])
    np.testing.assert_allclose(ours.logits, theirs.logits, atol=1e-4)
    assert (ours.masks == theirs.masks).mean() > 0.999
    quick = fast.decode(fast.embed(image), points=[(500, 375)], labels=[1])
    np.testing.assert_allclose(quick.logits, theirs.logits, atol=2e-5)
