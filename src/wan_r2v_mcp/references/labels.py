"""How the prompt names references, and a lint of the prompt against the references given.

Wan 2.7 numbers images and videos separately, each in list order: with two videos and one image the
image is "Image 1", not "Image 3" (https://docs.platform.qianwenai.com/docs/api-reference/video-generation/wan27-reference-to-video/create-task). The first frame is not named.
"""

from __future__ import annotations

import re

from ..models.base import image_label, reference_labels, video_label
from ..schema import PromptFinding

_ENGLISH = re.compile(r"\b(image|video)\s*#?\s*(\d+)\b", re.IGNORECASE)
_CHINESE = re.compile(r"(图片|图|视频)\s*(\d+)")
_OLD_STYLE = re.compile(r"\bcharacter\s*(\d+)\b", re.IGNORECASE)
_ORDINAL = re.compile(r"\bthe\s+(first|second|third|fourth|fifth|1st|2nd|3rd|4th|5th)\s+(image|picture|photo|video|clip)\b",
                      re.IGNORECASE)
_ORDINALS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "1st": 1, "2nd": 2, "3rd": 3, "4th": 4,
             "5th": 5}


def mentioned_labels(prompt: str) -> list[tuple[str, str]]:
    """(canonical label, text as written) for each reference named in the prompt."""
    found = [(f"{m.group(1).capitalize()} {int(m.group(2))}", m.group(0)) for m in _ENGLISH.finditer(prompt)]
    for m in _CHINESE.finditer(prompt):
        kind = "Video" if m.group(1) == "视频" else "Image"
        found.append((f"{kind} {int(m.group(2))}", m.group(0)))
    return found


def lint_prompt(prompt: str, images: int, videos: int) -> list[PromptFinding]:
    """Findings about how `prompt` names the references; errors block a generation, warnings do not."""
    labels = reference_labels(images, videos)
    findings: list[PromptFinding] = []
    named: set[str] = set()
    for label, written in mentioned_labels(prompt):
        named.add(label)
        if label in labels:
            continue
        kind = label.split()[0].lower()
        count = images if kind == "image" else videos
        have = f"{count} {kind}{'s' if count != 1 else ''}" if count else f"no {kind}s"
        if count:
            fix = f"name them {', '.join(x for x in labels if x.startswith(label.split()[0]))}"
        else:
            fix = f"add a reference_{kind}s entry, or remove \"{written}\" from the prompt"
        if count and kind == "image" and videos and int(label.split()[1]) <= images + videos:
            fix += " (images and videos are numbered separately, not across both lists)"
        findings.append(PromptFinding(
            severity="error",
            message=f"the prompt names \"{written}\" but the request has {have}",
            fix=fix,
        ))
    for m in _OLD_STYLE.finditer(prompt):  # Wan 2.6 numbered all references together as "Character N"
        n = int(m.group(1))
        combined = [image_label(i) for i in range(images)] + [video_label(i) for i in range(videos)]
        rewrite = f"write \"{combined[n - 1]}\" instead" if 0 < n <= len(combined) else \
            "name references \"Image N\" / \"Video N\", each numbered in its own list"
        findings.append(PromptFinding(
            severity="error",
            message=f"\"{m.group(0)}\" is Wan 2.6 naming, which Wan 2.7 ignores",
            fix=rewrite,
        ))
    for m in _ENGLISH.finditer(prompt):
        if not re.search(r"\s", m.group(0)):
            label = f"{m.group(1).capitalize()} {int(m.group(2))}"
            findings.append(PromptFinding(severity="warning", message=f"\"{m.group(0)}\" is written without a space",
                                          fix=f"write \"{label}\", as Wan 2.7 names references"))
    for m in _ORDINAL.finditer(prompt):
        kind = "Video" if m.group(2).lower() in ("video", "clip") else "Image"
        label = f"{kind} {_ORDINALS[m.group(1).lower()]}"
        findings.append(PromptFinding(severity="warning", message=f"\"{m.group(0)}\" does not name a reference",
                                      fix=f"write \"{label}\"" + ("" if label in labels else
                                                                      f" (the request has no {label})")))
    if labels and not named:
        findings.append(PromptFinding(
            severity="warning", message="the prompt names no reference",
            fix=f"name what each reference does, e.g. \"{labels[0]} walks into the room\"",
        ))
    unnamed = [x for x in labels if x not in named]
    if len(labels) > 1 and unnamed:
        findings.append(PromptFinding(
            severity="warning",
            message=f"the prompt never names {', '.join(unnamed)}",
            fix="say in the prompt what each reference does, or drop the ones it does not need",
        ))
    return findings
