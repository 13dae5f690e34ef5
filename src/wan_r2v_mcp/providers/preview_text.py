"""The preview's words: the badge that marks it as a preview, the prompt as its caption (wrapped, in a CJK font
where the prompt needs one), drawn once per render as bands of pixels."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import textwrap
from functools import lru_cache
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

BADGE = "OFFLINE PREVIEW - not Wan 2.7 output"
_CJK = re.compile(r"[\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef\u3000-\u303f]")
NO_CJK_FONT = "(no font on this machine can draw this caption: set WAN_R2V_CJK_FONT)"


def even(n: int) -> int:
    return n + (n % 2)


def header_band(label: str, width: int, height: int) -> Image.Image:
    """The preview badge on the left and the segment's label on the right; on two rows when one is too narrow
    (9:16), so they never overlap."""
    pad = max(height // 90, 6)
    font = font_for(max(min(height, width * 16 // 9) // 40, 12))
    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    badge_w = draw.textlength(BADGE, font=font)
    label_w = draw.textlength(label, font=font)
    line = font.size + 2 * pad
    rows = 1 if badge_w + label_w + 4 * pad <= width else 2
    band = Image.new("RGB", (width, even(line * rows)), (16, 18, 26))
    draw = ImageDraw.Draw(band)
    draw.text((pad, pad), BADGE, font=font, fill=(255, 214, 90))
    draw.text((width - pad, pad + line * (rows - 1)), label, font=font, fill=(235, 235, 240), anchor="ra")
    return band


def caption_drawable(prompt: str) -> bool:
    """Whether this machine can draw the prompt as the caption (text in Chinese, Japanese or Korean needs a font)."""
    return not _CJK.search(prompt) or cjk_font() is not None


def caption_band(prompt: str, width: int, height: int) -> Image.Image:
    size = max(min(height, width * 16 // 9) // 32, 12)
    text = " ".join(prompt.split())
    font = font_for(size, text)
    if _CJK.search(text) and font is None:
        text, font = NO_CJK_FONT, font_for(size)
    assert font is not None
    pad = max(height // 60, 6)
    lines = _wrap(text, font, width - 2 * pad)
    if len(lines) > 3:
        lines = lines[:3]
        lines[2] = lines[2][:-1].rstrip() + "…"
    line_h = int(font.size * 1.3)
    band = Image.new("RGB", (width, even(line_h * len(lines) + 2 * pad)), (16, 18, 26))
    draw = ImageDraw.Draw(band)
    for i, line in enumerate(lines):
        draw.text((width // 2, pad + i * line_h), line, font=font, fill=(255, 255, 255), anchor="ma")
    return band


def _wrap(text: str, font: Any, width: float) -> list[str]:
    """Lines that fit `width`: by words, or by characters for scripts written without spaces."""
    draw = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    if not _CJK.search(text):
        chars = max(int(width / max(draw.textlength("n", font=font), 1)), 10)
        return textwrap.wrap(text, width=chars) or [""]
    lines, current = [], ""
    for ch in text:
        if draw.textlength(current + ch, font=font) > width and current:
            lines.append(current)
            current = ch.lstrip()
        else:
            current += ch
    return [*lines, current]


def font_for(px: int, text: str = "") -> Any:
    """Pillow's own font; for text in Chinese, Japanese or Korean, a CJK font of this machine (None without one)."""
    if not _CJK.search(text):
        return ImageFont.load_default(size=px)
    path = cjk_font()
    return ImageFont.truetype(path, px) if path else None


@lru_cache(maxsize=1)
def cjk_font() -> str | None:
    """A font file with CJK glyphs: WAN_R2V_CJK_FONT ("none" to use none), else one fontconfig knows, else a usual
    place of macOS and Windows."""
    chosen = os.environ.get("WAN_R2V_CJK_FONT", "").strip()
    if chosen:
        return chosen if chosen.lower() != "none" and Path(chosen).is_file() else None
    if shutil.which("fc-list"):
        try:
            listed = subprocess.run(["fc-list", ":lang=zh", "file"], capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            listed = ""
        files = sorted(line.split(":")[0].strip() for line in listed.splitlines() if line.strip())
        if files:
            return files[0]
    for candidate in ("/System/Library/Fonts/PingFang.ttc", "/System/Library/Fonts/STHeiti Light.ttc",
                      "C:\\Windows\\Fonts\\msyh.ttc", "C:\\Windows\\Fonts\\simsun.ttc"):
        if Path(candidate).is_file():
            return candidate
    return None
