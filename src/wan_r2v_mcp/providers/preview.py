"""The offline `preview` provider: no key, no network, a real MP4 drafted from the references.

It exists so the whole flow (labels, tasks, waiting, results on disk) can be tried for free. What it
renders is a storyboard of the references with the prompt as a caption, not Wan 2.7 output, and
every result says so. Renders run in worker threads, a few at a time (the rest wait their turn, as at a
host); after a restart an unfinished render starts again from the payload stored in the ledger.
"""

from __future__ import annotations

import collections
import itertools
import os
import secrets
import shutil
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import DownloadInterrupted, PreviewFailed, ResultExpired
from ..memory import media_work
from ..schema import (
    EDIT_MODEL_ID,
    I2V_MODEL_ID,
    MODEL_ID,
    OUTPUT_FPS,
    PIXEL_SIZES,
    T2V_MODEL_ID,
    WAN3_MODEL_ID,
    EditRequest,
    I2VRequest,
    Limits,
    R2VRequest,
    T2VRequest,
    TaskError,
)
from ..store.files import commit, temp_beside
from .base import Capabilities, HostJob, JobRef, ProgressFn, Provider, Route, serves

if TYPE_CHECKING:
    from ..references.intake import Intake, Reference

NOTICE = ("Offline preview: drafted locally (a storyboard of your references, or a title card of your prompt), not "
          "Wan 2.7 output. "
          "Set a host key (e.g. DASHSCOPE_API_KEY) and pass provider=\"dashscope\" for the real model.")


# Renders at once. x264's frame threads already spread one render over every core, so more renders at once finish
# no sooner; they only split the interpreter between more threads, and the event loop's share (every tool call's
# answer) shrank with each: eight at once on two cores held a `wait_seconds` 0 generate for 0.9 s.
RENDERS_AT_ONCE = max(1, (os.cpu_count() or 1) // 4)


@dataclass
class _Render:
    payload: dict[str, Any]
    segments: list[Any]
    done: int = 0
    total: int = 1
    started: bool = False
    finished: bool = False
    error: str | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    ended: threading.Event = field(default_factory=threading.Event)  # finished, failed, stopped, or skipped


class PreviewProvider(Provider):
    capabilities = Capabilities(name="preview", title="the offline preview", poll_initial_seconds=0.25,
                                poll_max_seconds=1.0, max_polls_per_second=200.0, local=True)
    routes = serves(
        Route(MODEL_ID, f"{MODEL_ID} (offline preview)", frozenset({
            "negative_prompt", "first_frame", "voices", "shot_type", "prompt_extend", "watermark", "seed"}),
            "r2v_payload"),
        Route(T2V_MODEL_ID, f"{T2V_MODEL_ID} (offline preview)", frozenset({
            "negative_prompt", "audio", "prompt_extend", "watermark", "seed"}), "t2v_payload"),
        Route(I2V_MODEL_ID, f"{I2V_MODEL_ID} (offline preview)", frozenset({
            "negative_prompt", "first_frame", "last_frame", "first_clip", "driving_audio", "prompt_extend",
            "watermark", "seed"}), "i2v_payload"),
        Route(EDIT_MODEL_ID, f"{EDIT_MODEL_ID} (offline preview)", frozenset({
            "negative_prompt", "prompt_extend", "watermark", "seed"}), "edit_payload"),
        # Wan 3.0's reference mode drafted as R2V is: the references, each voice heard with its reference.
        Route(WAN3_MODEL_ID, f"{WAN3_MODEL_ID} (offline preview)", frozenset({
            "voices", "prompt_extend", "watermark", "seed"}), "r2v_payload", duration_max=Limits.WAN3_DURATION_MAX,
            duration_max_with_video=Limits.WAN3_DURATION_MAX, max_voices=Limits.WAN3_AUDIO_MAX),
    )

    def __init__(self, settings: Any):
        super().__init__(settings)
        self._renders: dict[str, _Render] = {}
        self._waiting: collections.deque[tuple[str, _Render]] = collections.deque()  # in the order submitted
        self._rendering = 0  # renders under way, each in a thread that then takes what waits, and ends when none does
        self._lock = threading.Lock()

    @property
    def _workdir(self) -> Path:
        folder = self.settings.data.preview
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def r2v_payload(self, request: R2VRequest, intake: Intake, urls: dict[str, str], route: Route) -> dict[str, Any]:
        media = []
        for ref in intake.references:
            item: dict[str, Any] = {"type": ref.role, "label": ref.label, "url": urls.get(ref.label, ref.given)}
            if ref.voice is not None:
                item["reference_voice"] = urls.get(ref.voice.label, ref.voice.given)
            media.append(item)
        width, height = PIXEL_SIZES[(request.resolution, request.aspect_ratio)]
        first = next((r for r in intake.references if r.role == "first_frame"), None)
        if first is not None and first.media is not None and first.media.width and first.media.height:
            # As the model does, the output takes the first frame's shape: the size of this resolution nearest to it.
            shape = first.media.width / first.media.height
            width, height = min((size for (res, _), size in PIXEL_SIZES.items() if res == request.resolution),
                                key=lambda size: abs(size[0] / size[1] - shape))
        return {
            "model": route.host_model,
            "prompt": request.prompt,
            "media": media,
            "width": width,
            "height": height,
            "fps": OUTPUT_FPS,
            "duration": request.duration,
        }

    def i2v_payload(self, request: I2VRequest, intake: Intake, urls: dict[str, str], route: Route) -> dict[str, Any]:
        """Opens on the first frame (or plays the clip it continues), ends on the last frame, with the driving audio
        as its sound; the size of this resolution nearest the frame's or clip's shape, as the model takes it."""
        media = [{"type": r.role, "label": r.label, "url": urls.get(r.label, r.given)} for r in intake.references]
        start = next((r for r in intake.references if r.role in ("first_frame", "first_clip")), None)
        width, height = PIXEL_SIZES[(request.resolution, "16:9")]
        if start is not None and start.media is not None and start.media.width and start.media.height:
            shape = start.media.width / start.media.height
            width, height = min((size for (res, _), size in PIXEL_SIZES.items() if res == request.resolution),
                                key=lambda size: abs(size[0] / size[1] - shape))
        return {"model": route.host_model, "prompt": request.prompt, "media": media, "width": width, "height": height,
                "fps": OUTPUT_FPS, "duration": request.duration}

    def edit_payload(self, request: EditRequest, intake: Intake, urls: dict[str, str], route: Route) -> dict[str, Any]:
        """The source clip (kept whole, or cut) with the prompt as its caption, then the reference images; at the
        clip's shape unless an aspect ratio is asked for."""
        media = [{"type": "reference_video" if r.role == "video" else r.role, "label": r.label,
                  "url": urls.get(r.label, r.given)} for r in intake.references]
        source = intake.references[0].media
        shape = (source.width / source.height) if source and source.width and source.height else 16 / 9
        if request.aspect_ratio:
            width, height = PIXEL_SIZES[(request.resolution, request.aspect_ratio)]
        else:
            width, height = min((size for (res, _), size in PIXEL_SIZES.items() if res == request.resolution),
                                key=lambda size: abs(size[0] / size[1] - shape))
        source_seconds = source.duration_seconds if source and source.duration_seconds else 5.0
        seconds = request.duration or max(2, round(source_seconds))  # 0 keeps the whole clip
        return {"model": route.host_model, "prompt": request.prompt, "media": media, "width": width, "height": height,
                "fps": OUTPUT_FPS, "duration": seconds}

    def t2v_payload(self, request: T2VRequest, intake: Intake, urls: dict[str, str], route: Route) -> dict[str, Any]:
        """A title card of the prompt (nothing is drawn from text offline), with the audio as its sound."""
        width, height = PIXEL_SIZES[(request.resolution, request.aspect_ratio)]
        media = [{"type": r.role, "label": r.label, "url": urls.get(r.label, r.given)} for r in intake.references]
        return {"model": route.host_model, "prompt": request.prompt, "media": media, "width": width, "height": height,
                "fps": OUTPUT_FPS, "duration": request.duration}

    def notes(self, request: R2VRequest | T2VRequest) -> list[str]:
        from .preview_text import caption_drawable

        if caption_drawable(request.prompt):
            return []
        return ["the preview cannot draw this prompt as its caption: this machine has no font for Chinese, Japanese "
                "or Korean text, so the video says so instead. Fix: install one (e.g. Noto Sans CJK) or set "
                "WAN_R2V_CJK_FONT to a font file; the real model reads the prompt either way."]

    async def check_access(self) -> str:
        return "works offline, no key"

    async def upload(self, ref: Reference, route: Route, *, scope: str = "") -> str:
        return str(ref.path)  # nothing leaves the machine: the render reads the checked file

    def describe(self, ref: Reference) -> str:
        return str(ref.path)

    async def submit(self, payload: dict[str, Any], route: Route) -> HostJob:
        job_id = f"preview-{secrets.token_hex(8)}"
        return self._job(job_id, self._start(job_id, payload))

    async def poll(self, job: JobRef) -> HostJob:
        job_id = job.provider_task_id
        out = self._output(job_id)
        with self._lock:
            state = self._renders.get(job_id)
        if state is None:
            if out.exists():
                return self._finished(job_id)
            state = self._start(job_id, job.payload or {})  # restarted server: render again
        return self._job(job_id, state)

    def _job(self, job_id: str, state: _Render) -> HostJob:
        if state.error:
            return HostJob(job_id, "failed", "render failed",
                           error=TaskError(code=PreviewFailed.code, message=state.error,
                                           hint="check that every reference file still exists and is readable"))
        if state.finished:
            return self._finished(job_id)
        if not state.started:
            with self._lock:
                before = itertools.takewhile(lambda waiting: waiting[0] != job_id, self._waiting)
                ahead = self._rendering + sum(not other.stop.is_set() for _, other in before)
            return HostJob(job_id, "queued", f"waiting its turn: {ahead} preview(s) render before it", progress=0.0)
        return HostJob(job_id, "running", f"rendering frame {state.done}/{state.total}",
                       progress=state.done / max(state.total, 1))

    async def cancel(self, job: JobRef) -> HostJob | None:
        job_id = job.provider_task_id
        with self._lock:
            state = self._renders.pop(job_id, None)
        if state is not None:
            state.stop.set()
        return HostJob(job_id, "canceled", "canceled")

    async def download(self, job: HostJob, dest: Path, progress: ProgressFn | None = None) -> None:
        out = self._output(job.provider_task_id)
        if not out.exists():  # a process killed while saving it took the render along: render it again
            import anyio

            payload = job.extra.get("payload")
            if not payload:
                raise ResultExpired("the preview's render is gone and its request was not recorded",
                                    fix="generate again (the preview is free)")
            state = self._start(job.provider_task_id, payload)
            await anyio.to_thread.run_sync(state.ended.wait)
            if state.stop.is_set():  # the server is stopping: the next one renders it
                raise DownloadInterrupted("the preview's render was stopped", fix="it is rendered again on its own")
            if state.error or not out.exists():
                raise ResultExpired(f"rendering the preview again failed: {state.error or 'it stopped'}",
                                    fix="check that every reference file still exists, then generate again")
        shutil.move(out, dest)  # the render is not kept twice

    async def aclose(self) -> None:
        with self._lock:
            states = list(self._renders.values())
        for state in states:
            state.stop.set()

    # -- the render itself

    def _output(self, job_id: str) -> Path:
        return self._workdir / f"{job_id}.mp4"

    def _finished(self, job_id: str) -> HostJob:
        out = self._output(job_id)
        # No billable seconds of its own: the task keeps what a host would bill, as its dry run said.
        return HostJob(job_id, "succeeded", "rendered", progress=1.0, video_url=out.as_uri())

    def _start(self, job_id: str, payload: dict[str, Any]) -> _Render:
        from .preview_render import Segment

        segments = []
        media = payload.get("media", [])
        sound = next((s for m in media if m.get("type") in ("audio", "driving_audio")
                      and not (s := str(m.get("url", ""))).startswith(("https://", "http://"))), None)
        pictures = [m for m in media if m.get("type") not in ("audio", "driving_audio")]
        if not pictures:  # text to video: a title card, with its audio
            segments.append(Segment(label="Text to video", kind="title", voice=sound))
        for item in pictures:
            url = str(item.get("url", ""))
            local = not url.startswith(("https://", "http://"))
            kind = {"reference_video": "video", "first_clip": "video"}.get(item["type"], "image") if local else "remote"
            voice = str(item.get("reference_voice") or "")
            segments.append(Segment(label=item.get("label", item["type"]), kind=kind,
                                    path=url if local else None, url=None if local else url,
                                    opens=item["type"] == "first_frame", closes=item["type"] == "last_frame",
                                    voice=voice if voice and not voice.startswith(("https://", "http://")) else None))
        if sound and pictures:  # image to video: the driving audio is heard from the start
            segments[0] = replace(segments[0], voice=sound)
        state = _Render(payload, segments, total=int(payload.get("fps", OUTPUT_FPS)) * int(payload.get("duration", 5)))
        with self._lock:
            self._renders[job_id] = state
            if self._rendering >= RENDERS_AT_ONCE:
                self._waiting.append((job_id, state))
                return state
            self._rendering += 1
            state.started = True
        threading.Thread(target=self._render_then_the_rest, args=(job_id, state), name="preview-render",
                         daemon=True).start()
        return state

    def _render_then_the_rest(self, job_id: str, state: _Render) -> None:
        """Render this one, then what waits, oldest first, until nothing does (a canceled one is skipped)."""
        while True:
            if state.stop.is_set():
                state.ended.set()
            else:
                self._run(job_id, state)
            with self._lock:
                if not self._waiting:
                    self._rendering -= 1
                    return
                job_id, state = self._waiting.popleft()
                state.started = True

    def _run(self, job_id: str, state: _Render) -> None:
        from .preview_render import RenderStopped, render

        out = self._output(job_id)
        part = temp_beside(out)

        def progress(done: int, total: int) -> None:
            state.done, state.total = done, total

        payload = state.payload
        try:
            with media_work():
                render(state.segments, payload.get("prompt", ""), (int(payload["width"]), int(payload["height"])),
                       int(payload.get("fps", OUTPUT_FPS)), int(payload.get("duration", 5)), part,
                       on_progress=progress, stop=state.stop)
            commit(part, out)
            state.finished = True
        except RenderStopped:
            part.unlink(missing_ok=True)
        except Exception as exc:  # surfaced through poll as a failed task
            part.unlink(missing_ok=True)
            state.error = f"{type(exc).__name__}: {exc}"[:300]
        finally:
            state.ended.set()
