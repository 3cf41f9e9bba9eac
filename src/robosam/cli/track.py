"""`robosam track`: track objects through a video file or a folder of frames."""

from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import typer

from robosam.cli.options import (
    DeviceOption,
    ModelOption,
    console,
    parse_numbers,
    parse_points,
    progress_bar,
    spinner,
)
from robosam.errors import InputError
from robosam.masks import mask_to_box


def track(
    video: Annotated[Path, typer.Argument(help="Video file (mp4, mov, ...) or folder of frames.")],
    frame: Annotated[
        int, typer.Option("--frame", "-f", help="Frame of the --point/--box/--mask prompt.")
    ] = 0,
    obj: Annotated[
        int, typer.Option("--obj", help="Object id of the --point/--box/--mask prompt (1..255).")
    ] = 1,
    point: Annotated[
        list[str] | None,
        typer.Option("--point", "-p", help="x,y or x,y,label (1 positive, 0 negative); repeatable."),
    ] = None,
    box: Annotated[str | None, typer.Option("--box", "-b", help="x1,y1,x2,y2 in pixels.")] = None,
    mask: Annotated[
        Path | None, typer.Option("--mask", help="Mask PNG of the object (non-zero = object).")
    ] = None,
    prompts: Annotated[
        Path | None,
        typer.Option(
            "--prompts", help="JSON list of {frame, obj_id, points/labels, box or mask} for many objects."
        ),
    ] = None,
    model: ModelOption = "sam2.1-hiera-tiny",
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder.")] = Path("track-out"),
    reverse: Annotated[
        bool,
        typer.Option("--reverse/--no-reverse", help="Also track backwards from the first prompted frame."),
    ] = False,
    max_frames: Annotated[
        int | None, typer.Option("--max-frames", help="Track at most this many frames forwards.")
    ] = None,
    overlay: Annotated[bool, typer.Option("--overlay/--no-overlay", help="Write overlay.mp4.")] = True,
    text: Annotated[
        str | None,
        typer.Option(
            "--text", "-t", help='Track everything a phrase names ("person", several as "cup. bowl").'
        ),
    ] = None,
    detector: Annotated[
        str,
        typer.Option(
            "--detector",
            "-d",
            help="With --text: detector preset, hub id or folder; sam3 or a SAM 3 video folder tracks natively.",
        ),
    ] = "grounding-dino-tiny",
    detect_every: Annotated[
        int, typer.Option("--detect-every", help="With --text: detect on frame 0 and every N frames.")
    ] = 10,
    box_threshold: Annotated[
        float | None,
        typer.Option(
            "--box-threshold",
            help="With --text: minimum detector confidence, 0..1 (default 0.3; SAM 3 video: its own).",
        ),
    ] = None,
    text_threshold: Annotated[
        float, typer.Option("--text-threshold", help="With --text: minimum phrase confidence, 0..1.")
    ] = 0.25,
    max_invisible: Annotated[
        int, typer.Option("--max-invisible", help="With --text: retire a track unseen this many frames.")
    ] = 5,
    device: DeviceOption = "auto",
) -> None:
    """Track objects through a video: prompts on any frame, masks on every frame.

    Writes OUT/masks/NNNNN.png (palette PNGs of object ids, DAVIS layout), OUT/tracks.json (per frame and
    object: COCO RLE mask, box, area, score, presence, visible) and OUT/overlay.mp4.

    Example: robosam track ../shared/data/sam2_bedroom/frames --frame 0 --obj 1 --point 210,350 --out out/

    Example: robosam track clip.mp4 --prompts prompts.json --out out/

    With --text, a detector finds what the phrase names on frame 0 and every --detect-every frames, new
    instances start tracks, identities are kept by mask IoU and tracks unseen for --max-invisible frames
    retire (tracks.json then also holds each object's label). --model tracks and segments the boxes; with
    --detector sam3 (or a SAM 3 video model folder) SAM 3 detects and tracks by itself.

    Example: robosam track clip.mp4 --text "person. dog" --detect-every 5 --out out/
    """
    from robosam.io.frames import open_frames
    from robosam.masks import read_mask_png
    from robosam.video.prompt_file import PromptSpec, read_prompt_file

    if text is not None:
        if point or box is not None or mask is not None or prompts is not None or reverse:
            raise InputError("--text", "text alone (not with --point/--box/--mask/--prompts/--reverse)", text)
        options = TextOptions(text, detector, detect_every, box_threshold, text_threshold, max_invisible)
        _track_text(video, options, model, out, max_frames, overlay, device)
        return
    specs: list[PromptSpec] = read_prompt_file(prompts) if prompts is not None else []
    points, labels = parse_points(point)
    box_values = parse_numbers(box, (4,), "--box") if box is not None else None
    if points or box_values is not None or mask is not None:
        mask_array = read_mask_png(mask, argument="--mask") if mask is not None else None
        if mask_array is not None and (points or box_values is not None):
            raise InputError("--mask", "a mask alone (not with --point/--box)", str(mask))
        specs.append(
            PromptSpec(
                frame=frame,
                obj_id=obj,
                points=points or None,
                labels=labels or None,
                box=box_values,
                mask=mask_array,
            )
        )
    if not specs:
        raise InputError("--point/--box/--mask/--prompts", "at least one prompt", None)
    if max_frames is not None and max_frames < 1:
        raise InputError("--max-frames", "a positive number of frames", max_frames)
    source = open_frames(video)
    for spec in specs:  # a bad frame or object id is the user's mistake: say so before loading a model
        if spec.frame >= len(source):
            raise InputError("--frame", f"a frame index in [0, {len(source)}) of {video}", spec.frame)
        if not 1 <= spec.obj_id <= 255:
            raise InputError(
                "--obj", "an object id in 1..255 (ids are pixel values of the mask PNGs)", spec.obj_id
            )

    from robosam.video import VideoTracker  # imports torch and transformers: only once input is valid
    from robosam.video.overlay import OverlayVideoWriter
    from robosam.video.writers import MaskFolderWriter, TrackLog

    with spinner(f"loading {model}"):
        tracker = VideoTracker(model, device=device)
    out.mkdir(parents=True, exist_ok=True)
    masks = MaskFolderWriter(out / "masks")
    log = TrackLog(
        source=str(video), model=model, frame_size=dict(zip(("height", "width"), source.frame_size))
    )
    results: dict[int, dict] = {}
    started = time.perf_counter()
    with tracker.session(source) as session, progress_bar() as progress:
        with spinner("prompting"):
            for spec in specs:
                session.add(frame=spec.frame, **spec.kwargs())
        first = min(spec.frame for spec in specs)
        passes = [(first, False)] + ([(first, True)] if reverse and first > 0 else [])
        for start, backwards in passes:
            total = (first + 1) if backwards else (len(source) - start)
            if max_frames is not None and not backwards:
                total = min(total, max_frames)
            task = progress.add_task("tracking backwards" if backwards else "tracking", total=total)
            limit = None if backwards else max_frames
            for index, tracks in session.propagate(start=start, max_frames=limit, reverse=backwards):
                results[index] = tracks
                masks.write(index, tracks, source.frame_size)
                log.add(index, tracks)
                progress.advance(task)
    elapsed = time.perf_counter() - started
    log.write(out / "tracks.json")
    written = ["masks/", "tracks.json"]
    if overlay:
        with spinner("writing overlay.mp4"):
            fps = getattr(source, "fps", 25.0)
            with OverlayVideoWriter(out / "overlay.mp4", fps=fps) as writer:
                for index in sorted(results):
                    writer.write(source[index], results[index])
        written.append("overlay.mp4")
    visible = log.visible_counts()
    console.print(
        f"tracked {len(visible)} object(s) over {len(results)} frame(s) in {elapsed:.1f} s "
        f"({1000 * elapsed / max(len(results), 1):.0f} ms/frame)"
    )
    for obj_id in sorted(visible):
        console.print(f"object {obj_id}: visible on {visible[obj_id]} frame(s)")
    console.print(f"wrote {', '.join(written)} to {out}")


@dataclass
class TextOptions:
    """``robosam track --text``'s options, checked on creation (before any model loads)."""

    text: str
    detector: str
    every: int
    box_threshold: float | None
    text_threshold: float
    max_invisible: int
    phrases: list[str] = field(init=False)

    def __post_init__(self) -> None:
        from robosam.grounding.base import check_threshold, parse_phrases

        self.phrases = parse_phrases(self.text, argument="--text")
        if self.box_threshold is not None:
            self.box_threshold = check_threshold(self.box_threshold, "--box-threshold")
        self.text_threshold = check_threshold(self.text_threshold, "--text-threshold")
        if self.every < 1:
            raise InputError("--detect-every", "a positive number of frames", self.every)
        if self.max_invisible < 0:
            raise InputError("--max-invisible", "a non-negative number of frames", self.max_invisible)


def _track_text(
    video: Path,
    options: TextOptions,
    model: str,
    out: Path,
    max_frames: int | None,
    overlay: bool,
    device: str,
) -> None:
    """Text-driven tracking: a ``TextTracker`` (detector + SAM + the live video tracker), or SAM 3's own
    concept tracking when the detector is a SAM 3 video model."""
    from robosam.io.frames import open_frames

    if max_frames is not None and max_frames < 1:
        raise InputError("--max-frames", "a positive number of frames", max_frames)
    source = open_frames(video)
    total = len(source) if max_frames is None else min(len(source), max_frames)

    from robosam.grounding.sam3_video import native_source
    from robosam.grounding.tracking import text_tracker
    from robosam.results import Track
    from robosam.video.overlay import OverlayVideoWriter
    from robosam.video.writers import MaskFolderWriter, TrackLog

    native = native_source(options.detector)
    with spinner(f"loading {options.detector}" + ("" if native else f" and {model}")):
        tracker = text_tracker(
            options.phrases,
            options.detector,
            segmenter=model,
            live=model,
            device=device,
            every=options.every,
            text_threshold=options.text_threshold,
            max_invisible=options.max_invisible,
            **({} if options.box_threshold is None else {"box_threshold": options.box_threshold}),
        )
    out.mkdir(parents=True, exist_ok=True)
    masks = MaskFolderWriter(out / "masks")
    log = TrackLog(
        source=str(video),
        model=None if native else model,
        detector=options.detector,
        text=options.phrases,
        detect_every=1 if native else options.every,
        frame_size=dict(zip(("height", "width"), source.frame_size)),
    )
    labels: dict[int, str] = {}
    beyond_png = False
    started = time.perf_counter()
    fps = getattr(source, "fps", 25.0)
    overlay_writer = OverlayVideoWriter(out / "overlay.mp4", fps=fps) if overlay else nullcontext()
    with overlay_writer as writer, progress_bar() as progress:
        task = progress.add_task("tracking", total=total)
        for index in range(total):
            frame = source[index]
            result = tracker.step(frame)
            tracks = {
                int(i): Track(
                    obj_id=int(i), mask=m, score=float(s), presence=1.0, visible=True, box=mask_to_box(m)
                )
                for i, m, s in zip(result.track_ids, result.masks, result.scores)
            }
            labels.update({int(i): str(label) for i, label in zip(result.track_ids, result.labels)})
            log.add(index, tracks)
            for record in log.frames[index]:
                record["label"] = labels[record["obj_id"]]
            paletted = {i: t for i, t in tracks.items() if i <= 255}  # PNG pixel values are 1..255
            beyond_png |= len(paletted) < len(tracks)
            masks.write(index, paletted, source.frame_size)
            if writer is not None:
                writer.write(frame, tracks)
            progress.advance(task)
    elapsed = time.perf_counter() - started
    log.write(out / "tracks.json")
    visible = log.visible_counts()
    console.print(
        f"tracked {len(visible)} object(s) named by {options.text!r} over {total} frame(s) in {elapsed:.1f} s "
        f"({1000 * elapsed / max(total, 1):.0f} ms/frame)"
    )
    for obj_id in sorted(visible):
        console.print(f"object {obj_id} ({labels[obj_id]}): visible on {visible[obj_id]} frame(s)")
    if beyond_png:
        console.print("ids above 255 are in tracks.json only (mask PNGs hold ids 1..255)")
    written = ["masks/", "tracks.json"] + (["overlay.mp4"] if overlay else [])
    console.print(f"wrote {', '.join(written)} to {out}")
