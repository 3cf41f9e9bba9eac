"""Run a model over a dataset under a protocol and collect every figure: quality per object, latency per stage."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from robosam.data import ImageSample, VideoSample
from robosam.errors import InputError
from robosam.evaluation.davis import DavisScores
from robosam.evaluation.protocols import (
    ClickOutcome,
    ClickProtocol,
    ImagePredictor,
    PromptOutcome,
    SinglePromptProtocol,
    VideoProtocol,
    VideoTracker,
    read_timings,
)


@dataclass
class ObjectRecord:
    """The result for one ground-truth object of one image.

    Single-prompt protocols fill iou, dice, boundary_f1, score, prompt. The click protocol fills ious
    (IoU after each click), noc (threshold -> clicks needed), reached, clicks, and iou/dice/boundary_f1 of
    the final mask.
    """

    sample: str
    label: str
    area: int
    iou: float
    dice: float
    boundary_f1: float
    score: float | None = None
    prompt: dict[str, Any] | None = None
    ious: list[float] | None = None
    noc: dict[float, int] | None = None
    reached: dict[float, bool] | None = None
    clicks: list[tuple[int, int, int]] | None = None

    @property
    def group(self) -> str:
        """The sequence of a DAVIS frame sample (``<seq>/<frame>``), else the sample name."""
        return self.sample.split("/", 1)[0]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "sample": self.sample,
            "label": self.label,
            "area": self.area,
            "iou": self.iou,
            "dice": self.dice,
            "boundary_f1": self.boundary_f1,
        }
        if self.score is not None:
            out["score"] = self.score
        if self.prompt is not None:
            out["prompt"] = self.prompt
        if self.ious is not None:
            out["ious"] = self.ious
            out["noc"] = {_pct(t): n for t, n in (self.noc or {}).items()}
            out["reached"] = {_pct(t): r for t, r in (self.reached or {}).items()}
            out["clicks"] = [list(c) for c in self.clicks or []]
        return out


def _pct(threshold: float) -> str:
    return f"{round(threshold * 100):d}"


@dataclass
class ImageEvalResult:
    """Everything an image protocol run measured.

    records: one per object. encoder_s: one per image (seconds, cache hits excluded). decoder_s and
    postprocess_s: one per predict call (seconds).
    """

    protocol: str
    settings: dict[str, Any]
    records: list[ObjectRecord] = field(default_factory=list)
    encoder_s: list[float] = field(default_factory=list)
    decoder_s: list[float] = field(default_factory=list)
    postprocess_s: list[float] = field(default_factory=list)
    images: int = 0

    def summary(self) -> dict[str, Any]:
        """Mean IoU / Dice / boundary F1 over objects; for clicks also mIoU@k, NoC@85/90 and failures."""
        out: dict[str, Any] = {"images": self.images, "objects": len(self.records)}
        if not self.records:
            return out
        out["mIoU"] = float(np.mean([r.iou for r in self.records]))
        out["mDice"] = float(np.mean([r.dice for r in self.records]))
        out["mBoundaryF1"] = float(np.mean([r.boundary_f1 for r in self.records]))
        curves = [r.ious for r in self.records if r.ious is not None]
        if curves:
            curve = self.miou_curve()
            out["mIoU@k"] = {str(k + 1): float(v) for k, v in enumerate(curve)}
            thresholds = sorted({t for r in self.records for t in (r.noc or {})})
            for t in thresholds:
                out[f"NoC@{_pct(t)}"] = float(np.mean([r.noc[t] for r in self.records if r.noc]))
                out[f"NoF@{_pct(t)}"] = int(sum(not r.reached[t] for r in self.records if r.reached))
        return out

    def miou_curve(self) -> np.ndarray:
        """(max_clicks,) mean IoU over objects after each click (empty for single-prompt protocols)."""
        curves = [r.ious for r in self.records if r.ious is not None]
        return np.mean(np.asarray(curves, dtype=np.float64), axis=0) if curves else np.zeros(0)

    def per_sequence(self) -> dict[str, float]:
        """mIoU per group (DAVIS sequence, or image)."""
        grouped: dict[str, list[float]] = {}
        for record in self.records:
            grouped.setdefault(record.group, []).append(record.iou)
        return {name: float(np.mean(values)) for name, values in grouped.items()}

    def latency(self) -> dict[str, dict[str, float]]:
        return latency_summary(
            {"encoder_s": self.encoder_s, "decoder_s": self.decoder_s, "postprocess_s": self.postprocess_s}
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "protocol": self.protocol,
            "settings": self.settings,
            "summary": self.summary(),
            "latency": self.latency(),
            "per_sequence": self.per_sequence(),
            "per_object": [r.to_dict() for r in self.records],
        }


def latency_summary(samples: dict[str, Sequence[float]]) -> dict[str, dict[str, float]]:
    """Per stage: count, median, mean and 90th percentile in milliseconds (stages without samples left out)."""
    out = {}
    for stage, values in samples.items():
        if len(values) == 0:
            continue
        ms = np.asarray(values, dtype=np.float64) * 1e3
        out[stage.removesuffix("_s")] = {
            "count": int(ms.size),
            "median_ms": float(np.median(ms)),
            "mean_ms": float(ms.mean()),
            "p90_ms": float(np.percentile(ms, 90)),
        }
    return out


def evaluate_images(
    predictor: ImagePredictor,
    samples: Iterable[ImageSample],
    protocol: SinglePromptProtocol | ClickProtocol,
    *,
    seed: int = 0,
    min_area: int = 1,
    on_sample: Callable[[ImageSample], None] | None = None,
) -> ImageEvalResult:
    """Prompt ``predictor`` for every object of every sample under ``protocol``.

    samples: e.g. a dataset from :func:`robosam.evaluation.load_dataset` (slice it to limit the run).
    seed: for the random protocols (point sampling, noise, jitter). min_area: objects with fewer pixels
    are skipped. on_sample: called after each sample (progress bars). The encoder time of an image is
    taken after ``set_image``, or from its first predict call when the predictor encodes lazily.
    """
    rng = np.random.default_rng(seed)
    settings = {k: v for k, v in vars(protocol).items() if not k.startswith("_")}
    settings.update(seed=seed, min_area=min_area)
    result = ImageEvalResult(protocol=protocol.name, settings=_jsonable(settings))
    for sample in samples:
        image = sample.load_image()
        if sample.masks.shape[1:] != image.shape[:2]:
            raise InputError(
                "data", f"masks of the image size {image.shape[:2]} for {sample.name}", sample.masks
            )
        predictor.set_image(image)
        encoder = read_timings(predictor)["encoder_s"]
        for mask, label in zip(sample.masks, sample.labels):
            area = int(mask.sum())
            if area < min_area:
                continue
            outcome = protocol.run(predictor, mask, rng)
            calls = outcome.timings if isinstance(outcome, ClickOutcome) else [outcome.timings]
            if encoder == 0.0 and calls:
                encoder = calls[0]["encoder_s"]
            result.decoder_s.extend(c["decoder_s"] for c in calls)
            result.postprocess_s.extend(c["postprocess_s"] for c in calls)
            result.records.append(_record(sample.name, label, area, outcome))
        if encoder > 0.0:
            result.encoder_s.append(encoder)
        result.images += 1
        if on_sample is not None:
            on_sample(sample)
    return result


def _record(sample: str, label: str, area: int, outcome: PromptOutcome | ClickOutcome) -> ObjectRecord:
    if isinstance(outcome, PromptOutcome):
        return ObjectRecord(
            sample=sample,
            label=label,
            area=area,
            iou=outcome.iou,
            dice=outcome.dice,
            boundary_f1=outcome.boundary_f1,
            score=outcome.score,
            prompt=outcome.prompt,
        )
    return ObjectRecord(
        sample=sample,
        label=label,
        area=area,
        iou=float(outcome.ious[-1]),
        dice=outcome.dice,
        boundary_f1=outcome.boundary_f1,
        ious=[float(v) for v in outcome.ious],
        noc=dict(outcome.noc),
        reached=dict(outcome.reached),
        clicks=list(outcome.clicks),
    )


def evaluate_videos(
    tracker: VideoTracker,
    videos: Iterable[VideoSample],
    protocol: VideoProtocol,
    *,
    on_video: Callable[[VideoSample], None] | None = None,
) -> DavisScores:
    """Run a semi-supervised video protocol on every sequence; J and F per object as :class:`DavisScores`."""
    scores = DavisScores()
    for video in videos:
        scores.objects.extend(protocol.run(tracker, video))
        if on_video is not None:
            on_video(video)
    return scores


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    return value
