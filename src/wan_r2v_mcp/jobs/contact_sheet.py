"""A contact sheet: the takes of one request (or of each shot of a sequence made in several takes) side by side, each at the same few moments and labelled with its take
number and seed, beside the references of the characters they use, so that a person (or a model reading the
image) can compare identity at a glance. One JPEG of at most `SHEET_MAX_BYTES`."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..memory import media_work
from ..store.files import atomic_write

MOMENTS = (0.1, 0.37, 0.63, 0.9)  # fractions of each take's length: the same moments in every take
CELL_WIDTH = 240
LABEL_WIDTH = 150
SHEET_MAX_BYTES = 1_000_000


@dataclass(frozen=True)
class Row:
    take: int
    seed: int | None
    video: Path | None  # None: the take has no video (failed, canceled)
    note: str = ""  # why there is no video
    shot: int | None = None  # the sequence's shot it is a take of


def row_of(take: int, seed: int | None, task: Any, shot: int | None = None) -> Row:
    """One take's row from its task (None: recorded, never sent)."""
    video = Path(task.local_path) if task is not None and task.local_path else None
    return Row(take, seed, video if video is not None and video.is_file() else None,
               "never sent" if task is None else task.status, shot)


def sheet_in(folder: Path, owner_id: str, rows: list[Row], character_files: dict[str, str]) -> dict[str, Any]:
    """The sheet of a group or sequence, drawn beside its videos as `<id>-sheet.jpg`: its facts and path."""
    dest = folder / f"{owner_id}-sheet.jpg"
    references = [(f"@{name}", Path(path)) for name, path in character_files.items()]
    return {**contact_sheet(rows, dest, references), "path": str(dest)}


def contact_sheet(rows: list[Row], dest: Path, references: list[tuple[str, Path]]) -> dict[str, Any]:
    """Draw the sheet into `dest`; returns its width, height, bytes and the moments shown (seconds, per take)."""
    with media_work():
        return _draw(rows, dest, references)


def _draw(rows: list[Row], dest: Path, references: list[tuple[str, Path]]) -> dict[str, Any]:
    from PIL import Image, ImageDraw

    shape = next((_size(r.video) for r in rows if r.video is not None), (16, 9))
    cell_h = max(1, round(CELL_WIDTH * shape[1] / shape[0]))
    header = 28
    refs = [(label, _still(path, cell_h)) for label, path in references]
    width = LABEL_WIDTH + CELL_WIDTH * (len(refs) + len(MOMENTS))
    height = header + cell_h * len(rows)
    sheet = Image.new("RGB", (width, height), (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    font, small = _font(16), _font(13)
    x = LABEL_WIDTH
    for label, _ in refs:
        draw.text((x + 6, 6), label, fill=(250, 210, 90), font=small)
        x += CELL_WIDTH
    seconds: list[list[float]] = []
    for i, fraction in enumerate(MOMENTS):
        draw.text((x + CELL_WIDTH * i + 6, 6), f"at {round(fraction * 100)}%", fill=(200, 200, 200), font=small)
    for row_index, row in enumerate(rows):
        y = header + cell_h * row_index
        label = f"Take {row.take}" if row.shot is None else f"Shot {row.shot} take {row.take}"
        draw.text((8, y + 8), label, fill=(255, 255, 255), font=font if row.shot is None else small)
        draw.text((8, y + 30), f"seed {row.seed}" if row.seed is not None else "seed: host's", fill=(190, 190, 190),
                  font=small)
        for ref_index, (_, still) in enumerate(refs):
            if still is not None:
                sheet.paste(still, (LABEL_WIDTH + CELL_WIDTH * ref_index, y))
        frames, times = _frames(row.video, list(MOMENTS), (CELL_WIDTH, cell_h)) if row.video else ([], [])
        seconds.append(times)
        for i in range(len(MOMENTS)):
            cell_x = x + CELL_WIDTH * i
            if i < len(frames) and frames[i] is not None:
                sheet.paste(frames[i], (cell_x, y))
            else:
                draw.rectangle((cell_x, y, cell_x + CELL_WIDTH - 1, y + cell_h - 1), fill=(60, 60, 60))
                draw.text((cell_x + 8, y + cell_h // 2 - 8), row.note or "no video", fill=(230, 230, 230), font=small)
        draw.line((0, y, width, y), fill=(80, 80, 80))
    data = _jpeg(sheet)
    atomic_write(dest, data)
    return {"width": width, "height": height, "bytes": len(data), "moments_seconds": seconds}


def _jpeg(sheet: Any) -> bytes:
    """The sheet as JPEG within the byte cap: lower quality first, then a smaller picture."""
    image = sheet
    while True:
        for quality in (85, 70, 55):
            out = io.BytesIO()
            image.save(out, format="JPEG", quality=quality, optimize=True)
            if out.tell() <= SHEET_MAX_BYTES:
                return out.getvalue()
        image = image.resize((max(1, image.width * 3 // 4), max(1, image.height * 3 // 4)))


def _size(video: Path) -> tuple[int, int]:
    import av

    with av.open(str(video), options={"protocol_whitelist": "file"}) as c:
        s = c.streams.video[0]
        return s.codec_context.width or 16, s.codec_context.height or 9


def _frames(video: Path, fractions: list[float], size: tuple[int, int]) -> tuple[list[Any], list[float]]:
    """The frames at these fractions of the video's length, fitted to `size`; the seconds they are at."""
    import av

    pictures: list[Any] = []
    times: list[float] = []
    try:
        with av.open(str(video), options={"protocol_whitelist": "file"}) as c:
            stream = c.streams.video[0]
            length = float(c.duration / 1_000_000) if c.duration else float(stream.duration * stream.time_base)
            for fraction in fractions:
                at = length * fraction
                c.seek(int(at * 1_000_000), backward=True)
                picked = None
                for frame in c.decode(stream):
                    picked = frame
                    if (frame.time or 0.0) >= at - 1e-6:
                        break
                times.append(round(float(picked.time or 0.0), 3) if picked is not None else at)
                pictures.append(_fit(picked.to_image(), size) if picked is not None else None)
    except Exception:  # an unreadable take shows as grey cells
        return [], []
    return pictures, times


def _still(path: Path, height: int) -> Any:
    """A character's reference as a cell: the image, or a clip's first frame."""
    from PIL import Image

    try:
        if path.suffix.lower() in (".mp4", ".mov"):
            frames, _ = _frames(path, [0.0], (CELL_WIDTH, height))
            return frames[0] if frames else None
        with Image.open(path) as im:
            return _fit(im.convert("RGB"), (CELL_WIDTH, height))
    except Exception:
        return None


def _fit(image: Any, size: tuple[int, int]) -> Any:
    """The picture inside `size`, centred on black, its shape kept."""
    from PIL import Image

    image = image.convert("RGB")
    image.thumbnail(size)
    cell = Image.new("RGB", size, (0, 0, 0))
    cell.paste(image, ((size[0] - image.width) // 2, (size[1] - image.height) // 2))
    return cell


def _font(px: int) -> Any:
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=px)
    except TypeError:  # Pillow before 10.1 has one size
        return ImageFont.load_default()
