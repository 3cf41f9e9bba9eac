"""Official-checkpoint loading: layout inference, strict key mapping, refused files, converted folders."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest
import torch
from helpers import require_peer
from parity_reference import SAM2_SMALL_OVERRIDES, build_sam1, build_sam2, save_sam1, save_sam2

from robosam.errors import InputError
from robosam.models import convert_sam, convert_sam2
from robosam.models.checkpoints import describe, load_official_checkpoint, read_state_dict, save_converted

# --- released layouts, on the meta device (shapes only, no weights drawn) ------------------------------


@contextlib.contextmanager
def _meta_build():
    """Build Meta's models on the meta device; Hiera's init calls ``linspace(...).item()``, kept on CPU."""
    real_linspace = torch.linspace
    torch.linspace = lambda *args, **kwargs: real_linspace(*args, **{**kwargs, "device": "cpu"})
    try:
        with torch.device("meta"):
            yield
    finally:
        torch.linspace = real_linspace


def _assert_maps_onto(model_class, config, weights) -> None:
    with torch.device("meta"):
        target = model_class(config).state_dict()
    assert sorted(weights) == sorted(target)
    wrong = [key for key in target if tuple(weights[key].shape) != tuple(target[key].shape)]
    assert not wrong


@pytest.mark.parametrize(
    ("name", "heads", "global_blocks"),
    [("vit_b", 12, [2, 5, 8, 11]), ("vit_l", 16, [5, 11, 17, 23]), ("vit_h", 16, [7, 15, 23, 31])],
)
def test_sam1_release_layouts_are_inferred_and_fully_mapped(name, heads, global_blocks):
    sam_model_registry = require_peer("segment_anything").sam_model_registry
    from transformers import SamModel

    with _meta_build():
        state = sam_model_registry[name]().state_dict()
    config = convert_sam.infer_config(state)
    vision = config.vision_config
    assert (vision.num_attention_heads, list(vision.global_attn_indexes), vision.window_size) == (
        heads,
        global_blocks,
        14,
    )
    assert (vision.image_size, vision.patch_size, config.prompt_encoder_config.image_size) == (1024, 16, 1024)
    assert config.mask_decoder_config.layer_norm_eps == 1e-5
    weights, unmapped = convert_sam.convert_state(state)
    assert unmapped == []
    _assert_maps_onto(SamModel, config, weights)
    assert convert_sam.describe(config) == f"SAM ViT-{name[-1].upper()}"


SAM2_RELEASES = [
    ("configs/sam2.1/sam2.1_hiera_t.yaml", "Hiera-T", [1, 2, 7, 2], [5, 7, 9], [8, 4, 14, 7], [7, 7]),
    ("configs/sam2.1/sam2.1_hiera_s.yaml", "Hiera-S", [1, 2, 11, 2], [7, 10, 13], [8, 4, 14, 7], [7, 7]),
    ("configs/sam2.1/sam2.1_hiera_b+.yaml", "Hiera-B+", [2, 3, 16, 3], [12, 16, 20], [8, 4, 14, 7], [14, 14]),
    ("configs/sam2.1/sam2.1_hiera_l.yaml", "Hiera-L", [2, 6, 36, 4], [23, 33, 43], [8, 4, 16, 8], [7, 7]),
    ("configs/sam2/sam2_hiera_t.yaml", "Hiera-T", [1, 2, 7, 2], [5, 7, 9], [8, 4, 14, 7], [7, 7]),
]


@pytest.mark.parametrize(
    ("config_file", "name", "blocks", "global_blocks", "windows", "background"), SAM2_RELEASES
)
def test_sam2_release_layouts_are_inferred_and_fully_mapped(
    config_file, name, blocks, global_blocks, windows, background
):
    meta_build_sam2 = require_peer("sam2.build_sam").build_sam2
    from transformers import Sam2Model, Sam2VideoModel

    with _meta_build():
        state = meta_build_sam2(config_file, ckpt_path=None, device="meta").state_dict()
    config = convert_sam2.infer_config(state)
    trunk = config.vision_config.backbone_config
    assert trunk.blocks_per_stage == blocks
    assert trunk.global_attention_blocks == global_blocks
    assert trunk.window_size_per_stage == windows
    assert trunk.window_positional_embedding_background_size == background
    assert config.prompt_encoder_config.image_size == 1024
    assert config.mask_decoder_config.dynamic_multimask_via_stability
    assert convert_sam2.describe(config) == f"SAM 2 {name}"
    weights, unmapped = convert_sam2.convert_state(state)
    assert unmapped == []
    _assert_maps_onto(Sam2Model, config, weights)

    video_config = convert_sam2.infer_config(state, video=True)
    assert video_config.enable_occlusion_spatial_embedding == ("sam2.1" in config_file)
    assert video_config.enable_temporal_pos_encoding_for_object_pointers == ("sam2.1" in config_file)
    assert video_config.num_maskmem == 7
    video_weights, unmapped = convert_sam2.convert_state(state, video=True)
    assert unmapped == []
    _assert_maps_onto(Sam2VideoModel, video_config, video_weights)


# --- small models built by Meta's code, through files -------------------------------------------------


@pytest.fixture(scope="module")
def sam1_file(tmp_path_factory) -> tuple[torch.nn.Module, Path]:
    require_peer("segment_anything")
    model = build_sam1()
    return model, save_sam1(model, tmp_path_factory.mktemp("sam1") / "sam_small.pth")


@pytest.fixture(scope="module")
def sam2_file(tmp_path_factory) -> tuple[torch.nn.Module, Path]:
    require_peer("sam2")
    model = build_sam2()
    return model, save_sam2(model, tmp_path_factory.mktemp("sam2") / "sam2.1_small.pt")


def test_sam1_file_loads_every_weight_in_place(sam1_file):
    meta, path = sam1_file
    model = load_official_checkpoint(path)
    assert type(model).__name__ == "SamModel" and not model.training
    assert all(p.dtype == torch.float32 and p.device.type == "cpu" for p in model.parameters())
    source = meta.state_dict()
    pairs = {
        "vision_encoder.layers.1.attn.rel_pos_h": "image_encoder.blocks.1.attn.rel_pos_h",
        "vision_encoder.neck.layer_norm2.bias": "image_encoder.neck.3.bias",
        "prompt_encoder.mask_embed.conv3.weight": "prompt_encoder.mask_downscaling.6.weight",
        "mask_decoder.iou_prediction_head.layers.0.weight": "mask_decoder.iou_prediction_head.layers.1.weight",
        "mask_decoder.output_hypernetworks_mlps.2.proj_out.bias": "mask_decoder.output_hypernetworks_mlps.2.layers.2.bias",
        "mask_decoder.transformer.layers.1.layer_norm4.weight": "mask_decoder.transformer.layers.1.norm4.weight",
    }
    target = model.state_dict()
    for hf_key, meta_key in pairs.items():
        assert torch.equal(target[hf_key], source[meta_key]), hf_key
    # one Fourier matrix, tied in SamModel
    assert (
        model.prompt_encoder.shared_embedding.positional_embedding
        is model.shared_image_embedding.positional_embedding
    )
    assert torch.equal(
        model.shared_image_embedding.positional_embedding,
        source["prompt_encoder.pe_layer.positional_encoding_gaussian_matrix"],
    )
    assert describe(model) == "SAM ViT (width 64, depth 2)"


def test_sam2_file_loads_image_and_video_models(sam2_file):
    meta, path = sam2_file
    source = meta.state_dict()
    model = load_official_checkpoint(path, overrides=SAM2_SMALL_OVERRIDES)
    assert type(model).__name__ == "Sam2Model" and not model.training
    stacked = torch.cat([source[f"sam_prompt_encoder.point_embeddings.{i}.weight"] for i in range(4)])
    assert torch.equal(model.prompt_encoder.point_embed.weight, stacked)
    assert torch.equal(model.no_memory_embedding, source["no_mem_embed"])
    assert torch.equal(
        model.mask_decoder.pred_obj_score_head.proj_out.weight,
        source["sam_mask_decoder.pred_obj_score_head.layers.2.weight"],
    )
    video = load_official_checkpoint(path, video=True, overrides=SAM2_SMALL_OVERRIDES)
    assert type(video).__name__ == "Sam2VideoModel"
    assert torch.equal(
        video.memory_encoder.mask_downsampler.final_conv.weight,
        source["memory_encoder.mask_downsampler.encoder.12.weight"],
    )
    assert torch.equal(
        video.memory_encoder.mask_downsampler.layers[3].layer_norm.bias,
        source["memory_encoder.mask_downsampler.encoder.10.bias"],
    )
    assert torch.equal(video.object_pointer_proj.layers[0].weight, source["obj_ptr_proj.layers.1.weight"])
    assert torch.equal(video.occlusion_spatial_embedding_parameter, source["no_obj_embed_spatial"])


def test_sam2_unreleased_trunk_needs_the_unstored_fields(sam2_file):
    _, path = sam2_file
    with pytest.raises(InputError, match="global_attention_blocks") as caught:
        load_official_checkpoint(path)
    assert "not a released size" in str(caught.value)


def test_half_precision_and_wrapped_and_safetensors_files(sam1_file, tmp_path):
    from safetensors.torch import save_file

    meta, _ = sam1_file
    half = {key: value.half() for key, value in meta.state_dict().items()}
    torch.save({"model": half}, tmp_path / "wrapped_half.pth")
    model = load_official_checkpoint(tmp_path / "wrapped_half.pth")
    assert model.vision_encoder.pos_embed.dtype == torch.float32
    save_file({k: v.contiguous() for k, v in meta.state_dict().items()}, tmp_path / "sam.safetensors")
    model = load_official_checkpoint(tmp_path / "sam.safetensors")
    assert torch.equal(model.vision_encoder.pos_embed, meta.image_encoder.pos_embed.detach())


# --- refused files --------------------------------------------------------------------------------------


class _Pickled:
    def __init__(self):
        self.value = 1


def test_file_needing_pickled_code_is_refused(tmp_path):
    torch.save({"model": {"a": torch.zeros(2)}, "extra": _Pickled()}, tmp_path / "code.pt")
    with pytest.raises(InputError, match="pickled code") as caught:
        read_state_dict(tmp_path / "code.pt")
    assert "_Pickled" in str(caught.value)


@pytest.mark.parametrize("damage", ["truncated", "junk", "empty", "legacy_truncated", "bad_safetensors"])
def test_truncated_or_corrupt_files_are_refused(tmp_path, damage):
    good = tmp_path / "good.pt"
    torch.save({"a": torch.zeros(4096)}, good)
    data = good.read_bytes()
    path = tmp_path / ("bad.safetensors" if damage == "bad_safetensors" else "bad.pt")
    if damage == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "junk":
        path.write_bytes(os.urandom(2048))
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "legacy_truncated":
        torch.save({"a": torch.zeros(64)}, good, _use_new_zipfile_serialization=False)
        path.write_bytes(good.read_bytes()[:300])
    else:
        path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}")
    with pytest.raises(InputError, match="truncated or corrupt"):
        read_state_dict(path)


def test_missing_file_and_folder_are_refused(tmp_path):
    with pytest.raises(InputError, match="an existing checkpoint file"):
        load_official_checkpoint(tmp_path / "nope.pth")
    with pytest.raises(InputError, match="an existing checkpoint file"):
        load_official_checkpoint(tmp_path)


def test_non_tensor_and_non_sam_state_dicts_are_refused(tmp_path):
    torch.save({"weights": {"a": torch.zeros(1)}, "step": 3}, tmp_path / "mixed.pt")
    with pytest.raises(InputError, match="only tensors"):
        read_state_dict(tmp_path / "mixed.pt")
    torch.save({"encoder.weight": torch.zeros(2, 2)}, tmp_path / "other.pt")
    with pytest.raises(InputError, match="SAM 1 .* or SAM 2"):
        load_official_checkpoint(tmp_path / "other.pt")


def test_unmapped_missing_and_misshapen_keys_are_listed(sam1_file, tmp_path):
    meta, _ = sam1_file
    state = dict(meta.state_dict())
    extra = {**state, "mask_decoder.lora_adapter.weight": torch.zeros(3)}
    torch.save(extra, tmp_path / "extra.pth")
    with pytest.raises(InputError, match="unmapped keys mask_decoder.lora_adapter.weight"):
        load_official_checkpoint(tmp_path / "extra.pth")

    missing = {k: v for k, v in state.items() if k != "mask_decoder.output_upscaling.3.bias"}
    torch.save(missing, tmp_path / "missing.pth")
    with pytest.raises(InputError, match="missing mask_decoder.upscale_conv2.bias"):
        load_official_checkpoint(tmp_path / "missing.pth")

    misshapen = {**state, "mask_decoder.output_upscaling.0.bias": torch.zeros(7)}
    torch.save(misshapen, tmp_path / "misshapen.pth")
    with pytest.raises(InputError, match=r"mask_decoder.upscale_conv1.bias \(7,\) vs \(8,\)"):
        load_official_checkpoint(tmp_path / "misshapen.pth")


def test_sam2_image_model_reports_unknown_keys_but_sets_video_modules_aside(sam2_file, tmp_path):
    meta, _ = sam2_file
    state = {**meta.state_dict(), "sam_mask_decoder.extra_head.weight": torch.zeros(2)}
    torch.save({"model": state}, tmp_path / "extra.pt")
    with pytest.raises(InputError, match="sam_mask_decoder.extra_head.weight") as caught:
        load_official_checkpoint(tmp_path / "extra.pt", overrides=SAM2_SMALL_OVERRIDES)
    assert "memory_attention" not in str(caught.value)


def test_sam1_has_no_video_model(sam1_file):
    _, path = sam1_file
    with pytest.raises(InputError, match="video"):
        load_official_checkpoint(path, video=True)


# --- converted folders ----------------------------------------------------------------------------------


def test_save_converted_folder_loads_with_from_pretrained_and_load_model(sam1_file, tmp_path):
    from transformers import AutoImageProcessor, AutoModel

    from robosam.models import load_model

    _, path = sam1_file
    model = load_official_checkpoint(path)
    out = save_converted(model, tmp_path / "converted")
    assert sorted(p.name for p in out.iterdir()) == [
        "config.json",
        "model.safetensors",
        "preprocessor_config.json",
    ]
    again = AutoModel.from_pretrained(out)
    for key, value in model.state_dict().items():
        assert torch.equal(value, again.state_dict()[key]), key
    assert again.config.mask_decoder_config.layer_norm_eps == 1e-5
    processor = AutoImageProcessor.from_pretrained(out)
    assert processor.size["longest_edge"] == 256
    loaded = load_model(str(out), device="cpu")
    assert loaded.family == "sam"
    assert loaded.adapter.input_size == 256
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_save_converted_refuses_a_non_empty_folder_and_leaves_nothing_on_failure(
    sam1_file, tmp_path, monkeypatch
):
    _, path = sam1_file
    model = load_official_checkpoint(path)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("x")
    with pytest.raises(InputError, match="a new or empty folder"):
        save_converted(model, busy)

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(type(model), "save_pretrained", fail)
    with pytest.raises(OSError):
        save_converted(model, tmp_path / "never")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["busy"]


def test_load_model_takes_an_official_checkpoint_file(sam1_file):
    from robosam.models import load_model

    _, path = sam1_file
    loaded = load_model(str(path), device="cpu")
    assert loaded.family == "sam"
    assert type(loaded.model).__name__ == "SamModel"


def test_sam2_video_model_from_a_checkpoint_has_real_buffers_and_moves(sam2_file):
    _, path = sam2_file
    model = load_official_checkpoint(path, video=True, overrides=SAM2_SMALL_OVERRIDES)
    assert not [name for name, buffer in model.named_buffers() if buffer.is_meta]
    model.to(dtype=torch.float64)  # a buffer left on the meta device could not move
