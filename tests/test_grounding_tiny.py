"""Tiny random-weight detectors of every family (Grounding DINO, MM Grounding DINO, OWLv2, SAM 3, SAM 3
LiteText) and CLIP, with tokenizers built from a made-up vocabulary: the real transformers classes, loaded
through ``load_detector`` from ``save_pretrained`` folders, checked for shapes and plumbing against
transformers' own post-processing."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import transformers as tf

from robosam.errors import InputError
from robosam.grounding import TextSegmenter, load_detector
from robosam.grounding.grounding_dino import GroundingDinoDetector
from robosam.grounding.owlv2 import Owlv2Detector
from robosam.grounding.sam3 import Sam3Detector

WORDS = ["a", "photo", "of", "red", "cup", "bowl", "spoon", "box", "person", "dog", "blue", "green", "table"]


def bert_tokenizer(folder: Path) -> tf.BertTokenizer:
    """A BERT word-piece tokenizer over WORDS (Grounding DINO's text side)."""
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", *WORDS]
    (folder / "bert_vocab.txt").write_text("\n".join(vocab) + "\n")
    return tf.BertTokenizer(str(folder / "bert_vocab.txt"))


def clip_tokenizer(folder: Path) -> tf.CLIPTokenizer:
    """A CLIP byte-pair tokenizer whose merges spell each of WORDS (OWLv2, SAM 3 and CLIP's text side)."""
    vocab = {"<|endoftext|>": 0, "<|startoftext|>": 1}  # OWLv2 takes a query whose first id is 0 for padding
    merges: list[str] = []
    for char in "abcdefghijklmnopqrstuvwxyz.":
        vocab.setdefault(char, len(vocab))
        vocab.setdefault(char + "</w>", len(vocab))
    for word in WORDS:
        parts = [*word[:-1], word[-1] + "</w>"]
        current = parts[0]
        for part in parts[1:]:
            if f"{current} {part}" not in merges:
                merges.append(f"{current} {part}")
            current += part
            vocab.setdefault(current, len(vocab))
    (folder / "clip_vocab.json").write_text(json.dumps(vocab))
    (folder / "clip_merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    return tf.CLIPTokenizer(str(folder / "clip_vocab.json"), str(folder / "clip_merges.txt"))


def _clip_text(tokenizer: tf.CLIPTokenizer, **extra) -> dict:
    return dict(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        max_position_embeddings=32,
        bos_token_id=1,
        eos_token_id=0,
        pad_token_id=0,
        **extra,
    )


def build_grounding_dino(folder: Path, mm: bool = False, seed: int = 0) -> Path:
    tokenizer = bert_tokenizer(folder)
    swin = tf.SwinConfig(
        image_size=64, patch_size=4, embed_dim=16, depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 1],
        window_size=4, out_indices=[2, 3, 4],
    )  # fmt: skip
    bert = tf.BertConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=64,
    )  # fmt: skip
    sizes = dict(
        backbone_config=swin, text_config=bert, num_queries=12, encoder_layers=1, decoder_layers=2,
        encoder_ffn_dim=32, decoder_ffn_dim=32, d_model=32, encoder_attention_heads=2,
        decoder_attention_heads=2, num_feature_levels=3, encoder_n_points=2, decoder_n_points=2,
        max_text_len=32,
    )  # fmt: skip
    torch.manual_seed(seed)
    if mm:
        model = tf.MMGroundingDinoForObjectDetection(tf.MMGroundingDinoConfig(**sizes))
    else:
        model = tf.GroundingDinoForObjectDetection(tf.GroundingDinoConfig(**sizes))
    processor = tf.GroundingDinoProcessor(
        image_processor=tf.GroundingDinoImageProcessor(size={"shortest_edge": 64, "longest_edge": 96}),
        tokenizer=tokenizer,
    )
    model.eval().save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def build_owlv2(folder: Path, seed: int = 0) -> Path:
    tokenizer = clip_tokenizer(folder)
    vision = dict(
        hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, image_size=32,
        patch_size=8,
    )  # fmt: skip
    torch.manual_seed(seed)
    config = tf.Owlv2Config(text_config=_clip_text(tokenizer), vision_config=vision, projection_dim=32)
    tf.Owlv2ForObjectDetection(config).eval().save_pretrained(folder)
    image_processor = tf.Owlv2ImageProcessor(size={"height": 32, "width": 32})
    tf.Owlv2Processor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(folder)
    return folder


def build_sam3(folder: Path, lite: bool = False, seed: int = 0) -> Path:
    tokenizer = clip_tokenizer(folder)
    image_size, patch = 112, 14
    side = image_size // patch
    vit = tf.Sam3ViTConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        image_size=image_size, patch_size=patch, window_size=4, global_attn_indexes=[1],
        pretrain_image_size=image_size,
    )  # fmt: skip
    vision = tf.Sam3VisionConfig(
        backbone_config=vit, fpn_hidden_size=32,
        backbone_feature_sizes=[[side * 4, side * 4], [side * 2, side * 2], [side, side]],
    )  # fmt: skip
    small = dict(hidden_size=32, num_layers=1, num_attention_heads=2, intermediate_size=64)
    parts = dict(
        geometry_encoder_config=small, detr_encoder_config=small,
        detr_decoder_config={**small, "num_queries": 8},
        mask_decoder_config=dict(hidden_size=32, num_attention_heads=2),
    )  # fmt: skip
    torch.manual_seed(seed)
    if lite:
        text = tf.Sam3LiteTextTextConfig(
            **{**_clip_text(tokenizer, projection_dim=32, repmixer_kernel_size=3), "num_hidden_layers": 2}
        )
        config = tf.Sam3LiteTextConfig(vision_config=vision.to_dict(), text_config=text.to_dict(), **parts)
        model = tf.Sam3LiteTextModel(config)
    else:
        text = tf.CLIPTextConfig(**_clip_text(tokenizer, projection_dim=32))
        model = tf.Sam3Model(tf.Sam3Config(vision_config=vision, text_config=text, **parts))
    model.eval().save_pretrained(folder)
    image_processor = tf.Sam3ImageProcessor(size={"height": image_size, "width": image_size})
    tf.Sam3Processor(image_processor=image_processor, tokenizer=tokenizer).save_pretrained(folder)
    return folder


def build_clip(folder: Path, seed: int = 0) -> tuple[tf.CLIPModel, tf.CLIPProcessor]:
    tokenizer = clip_tokenizer(folder)
    vision = dict(
        hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, image_size=32,
        patch_size=8,
    )  # fmt: skip
    torch.manual_seed(seed)
    config = tf.CLIPConfig(text_config=_clip_text(tokenizer), vision_config=vision, projection_dim=16)
    image_processor = tf.CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    return tf.CLIPModel(config).eval(), tf.CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer)


BUILDERS = {
    "grounding_dino": build_grounding_dino,
    "mm_grounding_dino": lambda folder: build_grounding_dino(folder, mm=True),
    "owlv2": build_owlv2,
    "sam3": build_sam3,
    "sam3_lite": lambda folder: build_sam3(folder, lite=True),
}


@pytest.fixture(scope="session")
def detector_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One save_pretrained folder (model + processor) per detector family."""
    root = tmp_path_factory.mktemp("tiny_detectors")
    folders = {}
    for name, build in BUILDERS.items():
        folder = root / name
        folder.mkdir()
        folders[name] = build(folder)
    return folders


@pytest.fixture(scope="session")
def loaded(detector_dirs):
    """load_detector on a family's folder, once per session: ``loaded(name)``."""
    cache = {}

    def get(name: str):
        if name not in cache:
            cache[name] = load_detector(detector_dirs[name], device="cpu")
        return cache[name]

    return get


@pytest.fixture
def scene() -> np.ndarray:
    image = np.full((90, 140, 3), 40, dtype=np.uint8)
    image[20:60, 30:80] = (200, 30, 30)
    return image


@pytest.mark.parametrize(
    ("name", "cls"),
    [
        ("grounding_dino", GroundingDinoDetector),
        ("mm_grounding_dino", GroundingDinoDetector),
        ("owlv2", Owlv2Detector),
        ("sam3", Sam3Detector),
        ("sam3_lite", Sam3Detector),
    ],
)
def test_every_family_loads_from_a_folder_and_detects(loaded, scene, name, cls):
    detector = loaded(name)
    assert isinstance(detector, cls)
    found = detector.detect(scene, ["red cup", "bowl"], box_threshold=0.0, text_threshold=0.0)
    assert len(found) > 0
    assert set(found.labels) <= {"red cup", "bowl"}
    assert np.all(found.boxes[:, [0, 2]] >= 0) and np.all(found.boxes[:, [0, 2]] <= 139)
    assert np.all(found.boxes[:, [1, 3]] >= 0) and np.all(found.boxes[:, [1, 3]] <= 89)
    assert np.all(np.diff(found.scores) <= 0)  # best first
    if cls is Sam3Detector:
        assert found.masks.shape == (len(found), 90, 140) and found.masks.dtype == bool
    none = detector.detect(scene, ["red cup"], box_threshold=1.0, text_threshold=1.0)
    assert len(none) == 0


def test_grounding_dino_boxes_and_scores_match_transformers_post_processing(loaded, scene, monkeypatch):
    detector = loaded("grounding_dino")
    monkeypatch.setattr(detector, "nms_iou", 1.0)  # keep every query, to compare one to one
    found = detector.detect(scene, ["red cup", "bowl"], box_threshold=0.0, text_threshold=0.0)
    assert len(found) == 12  # every query
    processor, model = detector.processor, detector.model
    inputs = processor(images=scene, text="red cup. bowl.", return_tensors="pt")
    with torch.no_grad():
        outputs = model(**inputs)
    reference = processor.post_process_grounded_object_detection(
        outputs, inputs["input_ids"], threshold=0.0, text_threshold=0.0, target_sizes=[(90, 140)]
    )[0]
    order = torch.argsort(reference["scores"], descending=True, stable=True)
    expected = reference["boxes"][order].numpy()
    expected[:, [0, 2]] = expected[:, [0, 2]].clip(0, 139)
    expected[:, [1, 3]] = expected[:, [1, 3]].clip(0, 89)
    np.testing.assert_allclose(found.scores, reference["scores"][order].numpy(), atol=1e-6)
    np.testing.assert_allclose(found.boxes, expected, atol=1e-3)
    # labels: the phrase holding the query's most probable phrase token; tokens (by hand from the vocabulary)
    # [CLS] red cup . bowl . [SEP] -> "red cup" at positions 1-2, "bowl" at 4
    probs = outputs.logits[0, :, :7].sigmoid()[order]
    expected_labels = np.where(probs[:, 1:3].max(1).values >= probs[:, 4], "red cup", "bowl")
    assert list(found.labels) == list(expected_labels)


def test_grounding_dino_text_threshold_drops_weak_phrases(loaded, scene, monkeypatch):
    detector = loaded("grounding_dino")
    monkeypatch.setattr(detector, "nms_iou", 1.0)
    inputs = detector.processor(images=scene, text="red cup. bowl.", return_tensors="pt")
    with torch.no_grad():
        probs = detector.model(**inputs).logits[0, :, :7].sigmoid().numpy()
    phrase_best = np.maximum(probs[:, 1:3].max(1), probs[:, 4])
    cut = float(np.median(phrase_best))
    found = detector.detect(scene, ["red cup", "bowl"], box_threshold=0.0, text_threshold=cut)
    assert len(found) == int((phrase_best > cut).sum())


def test_owlv2_boxes_match_transformers_post_processing(loaded, scene, monkeypatch):
    detector = loaded("owlv2")
    monkeypatch.setattr(detector, "nms_iou", 1.0)
    found = detector.detect(scene, ["red cup", "bowl"], box_threshold=0.0)
    assert len(found) == 16  # one box per patch of the 32 x 32 input, 8 x 8 patches: (32 / 8) ** 2
    processor = detector.processor
    inputs = processor(text=[["red cup", "bowl"]], images=scene, return_tensors="pt", padding=True)
    with torch.no_grad():
        outputs = detector.model(**inputs)
    reference = processor.post_process_grounded_object_detection(
        outputs, threshold=0.0, target_sizes=[(140, 140)], text_labels=[["red cup", "bowl"]]
    )[0]  # OWLv2 boxes are relative to the image padded to a square
    order = torch.argsort(reference["scores"], descending=True, stable=True)
    expected = reference["boxes"][order].numpy()
    expected[:, [0, 2]] = expected[:, [0, 2]].clip(0, 139)
    expected[:, [1, 3]] = expected[:, [1, 3]].clip(0, 89)
    np.testing.assert_allclose(found.scores, reference["scores"][order].numpy(), atol=1e-6)
    np.testing.assert_allclose(found.boxes, expected, atol=1e-3)
    assert list(found.labels) == [reference["text_labels"][i] for i in order.tolist()]


@pytest.mark.parametrize("name", ["sam3", "sam3_lite"])
def test_sam3_matches_transformers_instance_post_processing(loaded, scene, name):
    detector = loaded(name)
    found = detector.detect(scene, ["red cup"], box_threshold=0.0)
    assert len(found) == 8  # every query
    processor = detector.processor
    inputs = processor(images=scene, text="red cup", return_tensors="pt")
    with torch.no_grad():
        outputs = detector.model(
            pixel_values=inputs["pixel_values"],
            input_ids=inputs["input_ids"],
            attention_mask=inputs["attention_mask"],
        )
    reference = processor.post_process_instance_segmentation(
        outputs, threshold=0.0, mask_threshold=0.5, target_sizes=[(90, 140)]
    )[0]
    order = torch.argsort(reference["scores"], descending=True, stable=True)
    np.testing.assert_allclose(found.scores, reference["scores"][order].numpy(), atol=1e-5)
    expected = reference["boxes"][order].numpy()
    expected[:, [0, 2]] = expected[:, [0, 2]].clip(0, 139)
    expected[:, [1, 3]] = expected[:, [1, 3]].clip(0, 89)
    np.testing.assert_allclose(found.boxes, expected, atol=1e-3)
    agree = (found.masks == reference["masks"][order].numpy().astype(bool)).mean()
    assert agree > 0.999  # bilinear then threshold at logit 0 vs probability 0.5: the same but for ties


def test_sam3_text_segmenter_needs_no_separate_sam(loaded, scene):
    text_segmenter = TextSegmenter(None, detector=loaded("sam3"), device="cpu")
    result = text_segmenter.segment(scene, "red cup. bowl", box_threshold=0.0)
    assert result.masks.shape[1:] == (90, 140) and len(result) > 0
    assert set(result.labels) == {"red cup", "bowl"}  # both phrases asked, every query above 0
    assert result.logits.shape[1:] == (32, 32)
    empty = text_segmenter.segment(scene, "bowl", box_threshold=1.0)
    assert len(empty) == 0 and empty.masks.shape == (0, 90, 140)


def test_real_grounding_dino_boxes_reach_sam(loaded, tiny_sam_dir, scene):
    from robosam.segmenter import Segmenter

    segmenter = Segmenter(tiny_sam_dir, device="cpu")
    text_segmenter = TextSegmenter(segmenter, detector=loaded("grounding_dino"), device="cpu")
    found = text_segmenter.detect(scene, "red cup. bowl", box_threshold=0.0, text_threshold=0.0)
    result = text_segmenter.segment(scene, "red cup. bowl", box_threshold=0.0, text_threshold=0.0)
    assert len(result) == len(found) > 0
    np.testing.assert_allclose(result.data["detector_boxes"], found.boxes)
    direct = segmenter.decode(segmenter.embed(scene), box=found.boxes, multimask=False)
    np.testing.assert_array_equal(result.masks, direct.masks)
    np.testing.assert_allclose(result.data["mask_scores"], direct.scores)


def test_load_detector_errors(tmp_path, detector_dirs):
    with pytest.raises(InputError, match="detector preset"):
        load_detector("sam2.1-hiera-tiny")  # a segmenter preset, not a detector
    with pytest.raises(InputError, match="detector"):
        load_detector("no-such-detector")
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(InputError, match="Grounding DINO"):
        load_detector(tmp_path)
    model = tf.AutoModelForZeroShotObjectDetection.from_pretrained(detector_dirs["owlv2"])
    with pytest.raises(InputError, match="processor"):
        load_detector(model)
