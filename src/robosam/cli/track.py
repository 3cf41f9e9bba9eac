"""`robosam track`: track objects through a video file or a folder of frames."""

from __future__ import annotations

import time
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
    device: DeviceOption = "auto",
) -> None:
    """Track objects through a video: prompts on any frame, masks on every frame.

    Writes OUT/masks/NNNNN.png (palette PNGs of object ids, DAVIS layout), OUT/tracks.json (per frame and
    object: COCO RLE mask, box, area, score, presence, visible) and OUT/overlay.mp4.

    Example: robosam track ../shared/data/sam2_bedroom/frames --frame 0 --obj 1 --point 210,350 --out out/

    Example: robosam track clip.mp4 --prompts prompts.json --out out/
    """
    from robosam.io.frames import open_frames
    from robosam.masks import read_mask_png
    from robosam.video.prompt_file import PromptSpec, read_prompt_file

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
