"""Wan 2.7 reference-to-video: up to five reference images and clips (and voices), named in the prompt.

Billing (Alibaba Model Studio's wan2.7-r2v API reference, "Billing"): reference images are free; each reference
video counts at most 5 s divided by the number of reference videos; the output's seconds count in full.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..schema import MODEL_ID, GenerateArgs, Limits, R2VRequest
from .base import ModelSpec, ToolWords, reference_labels

INPUT_VIDEO_CAP_SECONDS = 5.0


class R2V(ModelSpec):
    name = MODEL_ID
    title = "Wan 2.7 reference-to-video"
    names_references = True
    args = GenerateArgs
    request_model = R2VRequest
    tool = ToolWords("generate_r2v", "Reference to video", """\
Wan 2.7 reference-to-video: a video of 1-5 reference images/videos (or saved characters) the prompt names. \
Paid per output second; provider="preview" is a free offline draft. Jobs take 1-5 min: this waits up to \
wait_seconds, then call get_task(task_id) until done; the video lands on disk.""")

    @staticmethod
    def billable_input_seconds(video_seconds: Sequence[float | None]) -> float:
        """A video whose length is unknown (a URL) counts at its full share."""
        if not video_seconds:
            return 0.0
        share = INPUT_VIDEO_CAP_SECONDS / len(video_seconds)
        return round(sum(min(s if s is not None else share, share) for s in video_seconds), 3)


# The prompt brief (the server's `r2v_prompt`): how to write this model's prompt for given references.
BRIEF_NAME = "r2v_prompt"
BRIEF_TITLE = "Write a Wan 2.7 reference-to-video prompt"
BRIEF_DESCRIPTION = (
    "A brief for writing the generate_r2v prompt: scene (what happens), images and videos (how many references of "
    "each, 0-5, 1-5 in all), shots (1-6) and duration (2-15 s). It names exactly the labels the references will "
    "get, and splits the duration into shot ranges.")


def brief(scene: str, images: str, videos: str, shots: str, duration: str) -> str:
    """The brief, or, for arguments out of bounds, what is wrong in the field/limit/fix words (a prompt that fails to
    render tells the agent nothing)."""
    most = Limits.REFERENCES_MAX
    bounds = {"images": (images, 0, most), "videos": (videos, 0, most), "shots": (shots, 1, 6),
              "duration": (duration, Limits.DURATION_MIN, Limits.DURATION_MAX)}
    values, problems = {}, []
    for name, (given, lo, hi) in bounds.items():
        text = str(given).strip()
        if not text.isdigit() or not lo <= int(text) <= hi:
            problems.append(f"{name}: is {given!r}. Limit: a whole number, {lo}-{hi}. Fix: pass one in that range.")
        else:
            values[name] = int(text)
    if not problems and not 1 <= values["images"] + values["videos"] <= most:
        problems.append(f"images + videos: is {values['images'] + values['videos']}. Limit: 1-{most} references in "
                        f"all. Fix: ask for 1 to {most}.")
    if not scene.strip():
        problems.append("scene: is empty. Fix: describe what happens, in a sentence or two.")
    if problems:
        return f"{BRIEF_NAME} cannot write this brief:\n" + "\n".join(f"- {p}" for p in problems)
    labels = reference_labels(values["images"], values["videos"])
    n, seconds = values["shots"], values["duration"]
    lines = [
        f"Write a prompt for generate_r2v ({R2V.title}), {seconds} s long, for this scene: {scene}",
        f"The references will be named {', '.join(labels)} - images and videos are numbered separately, each in its "
        "own list's order. Name only these; name each where it appears (\"Image 1 hands Video 1 a cup\").",
        "Say what each one does, where, and how it moves; give the camera (wide shot, close-up, slow push-in, "
        "tracking shot, low angle) and the light (golden hour, soft window light, neon, overcast).",
        "Dialogue goes in quotes after the speaker's label: Image 1 says: \"Good morning.\" Describe the sound "
        f"too (rain, a busy cafe, music). Keep it under {Limits.PROMPT_MAX} characters.",
    ]
    if n > 1:
        cuts = [round(seconds * i / n) for i in range(n + 1)]
        ranges = ", ".join(f"Shot {i + 1} [{cuts[i]}-{cuts[i + 1]}s]" for i in range(n))
        lines.append(f"Split it into {n} shots covering the {seconds} s: {ranges}, each with its own line "
                     "(\"Shot 1 [0-3s]: ...\").")
    return "\n".join(lines)
