"""Images with an alpha channel, flattened onto white before they leave the machine.

DashScope's media schema takes PNG "without an alpha channel" (wan2.7-r2v API reference, MediaItem), and
inference.sh hands its files on to DashScope. Flattening is what a person would do by hand, so a reference
with transparency is flattened for every host (and the result says so) rather than refused or paid for and
then failed by the host. The flattened copy is opened and at once unlinked: it lives exactly as long as the
request's open files, and nothing is left in the data folder.
"""

from __future__ import annotations

import secrets
from dataclasses import replace
from pathlib import Path

from ..errors import InputErrors, ReferenceError
from ..schema import PromptFinding
from .intake import Intake
from .opened import OpenedFile

IMAGE_ROLES = ("reference_image", "first_frame")


def flatten_alpha(intake: Intake, workdir: Path) -> list[PromptFinding]:
    """Swap each local image with an alpha channel for a flattened PNG of itself; returns what was done."""
    notes = []
    for ref in intake.references:
        if ref.role not in IMAGE_ROLES or ref.opened is None or ref.media is None or not ref.media.has_alpha:
            continue
        try:
            ref.opened = _flattened(ref.opened, workdir)
        except OSError as exc:  # PIL's truncated or broken pixel data, a full disk
            raise InputErrors([ReferenceError(
                f"has an alpha channel and could not be flattened for upload ({type(exc).__name__})", field=ref.field,
                fix="re-export it as a PNG or JPEG without transparency")]) from None
        ref.media = replace(ref.media, format="png", size_bytes=ref.opened.size, has_alpha=False)
        notes.append(PromptFinding(
            severity="warning",
            message=f"{ref.label} has an alpha channel, which DashScope's schema does not take; it was flattened "
                    "onto white for upload (your file is unchanged)",
            fix="pass an image without transparency to choose the background yourself"))
    return notes


def _flattened(opened: OpenedFile, workdir: Path) -> OpenedFile:
    from PIL import Image

    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / f".flat-{secrets.token_hex(8)}.png"
    try:
        with Image.open(opened.reader()) as im:
            rgba = im.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
        flat.save(path, format="PNG")
        copy = OpenedFile(path)
    finally:
        try:
            path.unlink(missing_ok=True)  # the open copy stays readable; nothing is left behind
        except OSError:  # Windows cannot remove an open file: it goes with the next start's cleanup
            pass
    opened.close()
    return copy
