"""Small random-weight models of every SAM family, for tests (seconds on CPU, no downloads)."""

from __future__ import annotations

import torch
import transformers as tf

IMAGE_SIZE = 128  # encoder input side; low-res masks are IMAGE_SIZE / 4
HIDDEN = 32


def _sam_config(hq: bool = False) -> tf.PretrainedConfig:
    vision = dict(
        hidden_size=32,
        output_channels=HIDDEN,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=IMAGE_SIZE,
        patch_size=16,
        mlp_dim=64,
        window_size=4,
        global_attn_indexes=[1],
        num_pos_feats=HIDDEN // 2,
    )
    prompt = dict(
        hidden_size=HIDDEN,
        image_size=IMAGE_SIZE,
        patch_size=16,
        image_embedding_size=IMAGE_SIZE // 16,
        mask_input_channels=4,
    )
    decoder = dict(hidden_size=HIDDEN, mlp_dim=64, num_attention_heads=2, iou_head_hidden_dim=32)
    if hq:
        decoder["vit_dim"] = 32
        return tf.SamHQConfig(
            vision_config=tf.SamHQVisionConfig(**vision),
            prompt_encoder_config=tf.SamHQPromptEncoderConfig(**prompt),
            mask_decoder_config=tf.SamHQMaskDecoderConfig(**decoder),
        )
    return tf.SamConfig(
        vision_config=tf.SamVisionConfig(**vision),
        prompt_encoder_config=tf.SamPromptEncoderConfig(**prompt),
        mask_decoder_config=tf.SamMaskDecoderConfig(**decoder),
    )


def _sam2_parts() -> tuple[dict, dict, dict, dict]:
    side = IMAGE_SIZE // 4
    vision = dict(
        backbone_channel_list=[128, 64, 32, 16],
        backbone_feature_sizes=[[side, side], [side // 2, side // 2], [side // 4, side // 4]],
        fpn_hidden_size=HIDDEN,
    )
    hiera = dict(
        hidden_size=16,
        num_attention_heads=1,
        image_size=[IMAGE_SIZE, IMAGE_SIZE],
        blocks_per_stage=[1, 1, 2, 1],
        embed_dim_per_stage=[16, 32, 64, 128],
        num_attention_heads_per_stage=[1, 1, 2, 2],
        window_size_per_stage=[4, 4, 4, 2],
        global_attention_blocks=[3],
        window_positional_embedding_background_size=[2, 2],
    )
    prompt = dict(hidden_size=HIDDEN, image_size=IMAGE_SIZE, patch_size=16, mask_input_channels=4)
    decoder = dict(hidden_size=HIDDEN, mlp_dim=64, num_attention_heads=2, iou_head_hidden_dim=32)
    return vision, hiera, prompt, decoder


def build_sam(seed: int = 0) -> tf.SamModel:
    torch.manual_seed(seed)
    return tf.SamModel(_sam_config()).eval()


def build_sam_hq(seed: int = 0) -> tf.SamHQModel:
    torch.manual_seed(seed)
    return tf.SamHQModel(_sam_config(hq=True)).eval()


def build_sam2(seed: int = 0) -> tf.Sam2Model:
    torch.manual_seed(seed)
    vision, hiera, prompt, decoder = _sam2_parts()
    config = tf.Sam2Config(
        vision_config=tf.Sam2VisionConfig(backbone_config=tf.Sam2HieraDetConfig(**hiera), **vision),
        prompt_encoder_config=tf.Sam2PromptEncoderConfig(**prompt),
        mask_decoder_config=tf.Sam2MaskDecoderConfig(**decoder),
    )
    return tf.Sam2Model(config).eval()


def build_sam3_tracker(seed: int = 0) -> tf.Sam3TrackerModel:
    torch.manual_seed(seed)
    image_size, patch = 112, 14
    side = image_size // patch
    vit = tf.Sam3ViTConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=image_size,
        patch_size=patch,
        window_size=4,
        global_attn_indexes=[1],
        pretrain_image_size=image_size,
    )
    vision = tf.Sam3VisionConfig(
        backbone_config=vit,
        fpn_hidden_size=HIDDEN,
        backbone_feature_sizes=[[side * 4, side * 4], [side * 2, side * 2], [side, side]],
    )
    config = tf.Sam3TrackerConfig(
        vision_config=vision,
        prompt_encoder_config=tf.Sam3TrackerPromptEncoderConfig(
            hidden_size=HIDDEN, image_size=image_size, patch_size=patch, mask_input_channels=4
        ),
        mask_decoder_config=tf.Sam3TrackerMaskDecoderConfig(
            hidden_size=HIDDEN, mlp_dim=64, num_attention_heads=2, iou_head_hidden_dim=32
        ),
    )
    return tf.Sam3TrackerModel(config).eval()


def build_edgetam(seed: int = 0) -> tf.EdgeTamModel:
    torch.manual_seed(seed)
    side = IMAGE_SIZE // 4
    backbone = tf.TimmWrapperConfig(
        architecture="repvit_m1",
        model_args={"in_chans": 3, "features_only": True, "out_indices": [0, 1, 2, 3]},
    )
    vision = tf.EdgeTamVisionConfig(
        backbone_config=backbone,
        backbone_channel_list=[384, 192, 96, 48],
        fpn_hidden_size=HIDDEN,
        backbone_feature_sizes=[[side, side], [side // 2, side // 2], [side // 4, side // 4]],
    )
    config = tf.EdgeTamConfig(
        vision_config=vision,
        prompt_encoder_config=tf.EdgeTamPromptEncoderConfig(
            hidden_size=HIDDEN, image_size=IMAGE_SIZE, patch_size=16, mask_input_channels=4
        ),
        mask_decoder_config=tf.EdgeTamMaskDecoderConfig(
            hidden_size=HIDDEN, mlp_dim=64, num_attention_heads=2, iou_head_hidden_dim=32
        ),
    )
    return tf.EdgeTamModel(config).eval()


BUILDERS = {
    "sam": build_sam,
    "sam_hq": build_sam_hq,
    "sam2": build_sam2,
    "sam3_tracker": build_sam3_tracker,
    "edgetam": build_edgetam,
}
