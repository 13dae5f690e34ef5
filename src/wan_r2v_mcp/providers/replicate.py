"""Replicate: the official model `wan-video/wan-2.7-r2v` (https://replicate.com/wan-video/wan-2.7-r2v/api).

Create through the model's predictions endpoint, poll, cancel; local files through the files API
(multipart, streamed); RFC 7807 errors. Outputs are deleted after 1 h, so the runner downloads at once.
"""

from __future__ import annotations

import mimetypes
import re
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..errors import GenerationFailed, HostAnswerMalformed, SubmitUnknown, UploadRetryable, clean_remote_text
from ..schema import (
    EDIT_MODEL_ID,
    I2V_MODEL_ID,
    MODEL_ID,
    T2V_MODEL_ID,
    EditRequest,
    I2VRequest,
    Limits,
    R2VRequest,
    T2VRequest,
    TaskError,
)
from .base import Capabilities, HostCandidate, HostJob, JobRef, PageTurn, Route, optional_inputs, serves
from .hosted import HostedProvider

if TYPE_CHECKING:
    from ..references.intake import Intake, Reference
    from .host_settings import ReplicateSettings

BASE_URL = "https://api.replicate.com/v1"
RESULT_TTL_SECONDS = 3600
STATUS = {"starting": "queued", "processing": "running", "succeeded": "succeeded", "failed": "failed",
          "canceled": "canceled", "aborted": "canceled"}


class ReplicateProvider(HostedProvider):
    task_id_pattern = re.compile(r"^[a-z0-9]{1,64}$")
    result_domains = ("replicate.delivery", "replicate.com")

    capabilities = Capabilities(name="replicate", title="Replicate")
    routes = serves(
        Route(MODEL_ID, "wan-video/wan-2.7-r2v", frozenset({"negative_prompt", "shot_type", "seed"}), "r2v_payload",
              duration_max=10),
        # replicate.com/wan-video/wan-2.7-t2v: its audio is a file of 3-30 s; no watermark.
        Route(T2V_MODEL_ID, "wan-video/wan-2.7-t2v", frozenset({"negative_prompt", "audio", "prompt_extend", "seed"}),
              "t2v_payload", audio_seconds=(3.0, 30.0)),
        # replicate.com/wan-video/wan-2.7-i2v: first_frame, last_frame ("requires first_frame"), first_clip ("cannot
        # be combined with first_frame"), audio of 3-30 s; whether it takes a clip with a last frame is not stated.
        Route(I2V_MODEL_ID, "wan-video/wan-2.7-i2v", frozenset({"negative_prompt", "first_frame", "last_frame",
                                                                "first_clip", "driving_audio", "prompt_extend", "seed"}),
              "i2v_payload", audio_seconds=(3.0, 30.0), modes=Limits.I2V_MODES[:5]),
        # replicate.com/wan-video/wan-2.7-videoedit: one reference_image; aspect_ratio "auto" (the default) keeps
        # the clip's; duration unset keeps its length; no negative prompt, prompt expansion or watermark.
        Route(EDIT_MODEL_ID, "wan-video/wan-2.7-videoedit", frozenset({"seed"}), "edit_payload", references_max=1),
    )

    def __init__(self, settings: Any):
        super().__init__(settings)
        own: ReplicateSettings = self.own  # type: ignore[assignment]
        self._open(own.base_url or BASE_URL, {"Authorization": f"Bearer {self.key}"})

    def r2v_payload(self, request: R2VRequest, intake: Intake, urls: dict[str, str], route: Route) -> dict[str, Any]:
        inputs: dict[str, Any] = {
            "prompt": request.prompt,
            "reference_images": [urls[r.label] for r in intake.references if r.role == "reference_image"],
            "reference_videos": [urls[r.label] for r in intake.references if r.role == "reference_video"],
            "resolution": request.resolution,
            "aspect_ratio": request.aspect_ratio,
            "duration": request.duration,
        }
        if request.negative_prompt:
            inputs["negative_prompt"] = request.negative_prompt
        if request.shot_type:
            inputs["shot_type"] = request.shot_type
        if request.seed is not None:
            inputs["seed"] = request.seed
        return {"input": inputs}

    def i2v_payload(self, request: I2VRequest, intake: Intake, urls: dict[str, str], route: Route) -> dict[str, Any]:
        inputs: dict[str, Any] = {"prompt": request.prompt}
        for ref in intake.references:
            inputs["audio" if ref.role == "driving_audio" else ref.role] = urls[ref.label]
        inputs.update(resolution=request.resolution, duration=request.duration)
        inputs.update(optional_inputs(request, "enable_prompt_expansion"))
        return {"input": inputs}

    def edit_payload(self, request: EditRequest, intake: Intake, urls: dict[str, str], route: Route) -> dict[str, Any]:
        inputs: dict[str, Any] = {"prompt": request.prompt}
        for ref in intake.references:
            inputs[ref.role] = urls[ref.label]  # video, reference_image (one)
        inputs.update(resolution=request.resolution, audio_setting=request.audio_setting)
        if request.aspect_ratio:
            inputs["aspect_ratio"] = request.aspect_ratio
        if request.duration:
            inputs["duration"] = request.duration
        inputs.update(optional_inputs(request, "enable_prompt_expansion"))
        return {"input": inputs}

    def t2v_payload(self, request: T2VRequest, intake: Intake, urls: dict[str, str], route: Route) -> dict[str, Any]:
        inputs: dict[str, Any] = {"prompt": request.prompt, "resolution": request.resolution,
                                  "aspect_ratio": request.aspect_ratio, "duration": request.duration}
        for ref in intake.references:
            if ref.role == "audio":
                inputs["audio"] = urls[ref.label]
        inputs.update(optional_inputs(request, "enable_prompt_expansion"))
        return {"input": inputs}

    async def upload(self, ref: Reference, route: Route, *, scope: str = "") -> str:
        opened = ref.opened
        assert opened is not None
        content_type = mimetypes.guess_type(f"x{opened.suffix}")[0] or "application/octet-stream"
        # multipart, streamed from the checked open file by httpx
        body = await self._call("POST", "/files", files={"content": (f"ref{opened.suffix}", opened.reader(), content_type)})
        url = (body.get("urls") or {}).get("get") if isinstance(body, dict) else None
        if not url:
            raise UploadRetryable(f"Replicate accepted {ref.label} but returned no URL for it",
                                  fix="try again; or pass the reference as an https URL")
        return url

    async def submit(self, payload: dict[str, Any], route: Route) -> HostJob:
        body = await self._call("POST", f"/models/{route.host_model}/predictions", json=payload, creates=True)
        if not isinstance(body, dict) or not self.task_id_pattern.match(str(body.get("id") or "")):
            raise SubmitUnknown("Replicate accepted the request but returned no usable prediction id",
                                fix="the job may exist at Replicate; it is looked for, never sent again")
        return self._job(body)

    async def poll(self, job: JobRef) -> HostJob:
        return self._job(await self._call("GET", f"/predictions/{self._checked(job.provider_task_id)}"))

    async def cancel(self, job: JobRef) -> HostJob | None:
        return self._job(await self._call("POST", f"/predictions/{self._checked(job.provider_task_id)}/cancel"))

    async def check_access(self) -> str:
        body = await self._call("GET", "/predictions", attempts=1)  # the caller's own list: free, needs the token
        shown = len(body.get("results") or []) if isinstance(body, dict) else 0
        return f"the token works ({shown} recent prediction{'s' if shown != 1 else ''} on its first page)"

    async def find_submitted(self, *, since: float, until: float, model: str | None = None,
                             before_page: PageTurn | None = None) -> list[HostCandidate] | None:
        # The list is newest first, a page at a time (https://replicate.com/docs/reference/http#predictions.list); stop once past the window.
        found: list[HostCandidate] = []
        url: str | None = "/predictions"
        for _ in range(100):
            if before_page is not None:
                await before_page()
            body = await self._call("GET", url)
            older = False
            for p in body.get("results") or []:
                pid, created = str(p.get("id") or ""), _timestamp(p.get("created_at"))
                if not self.task_id_pattern.match(pid):
                    continue
                if created is not None and created < since:
                    older = True
                    continue
                prompt = (p.get("input") or {}).get("prompt")
                found.append(HostCandidate(pid, created, p.get("model"), prompt if isinstance(prompt, str) else None,
                                           STATUS.get(str(p.get("status")))))  # type: ignore[arg-type]
            url = body.get("next")
            if older or not url:
                return found
            if url.startswith(self.base_url):
                url = url[len(self.base_url):]
            elif not url.startswith("/"):
                break  # a next page on another host: not followed with our key
        # A partial list proves nothing: never conclude from it that a job was not made.
        raise HostAnswerMalformed("Replicate's prediction list could not be read back to this task's time",
                                  fix="the server looks again later")

    def _job(self, p: dict[str, Any]) -> HostJob:
        raw = str(p.get("status") or "starting")
        status = STATUS.get(raw, "running")
        job = HostJob(str(p.get("id")), status, stage=f"Replicate {raw}")  # type: ignore[arg-type]
        prompt = (p.get("input") or {}).get("prompt") if isinstance(p.get("input"), dict) else None
        job.prompt = prompt if isinstance(prompt, str) else None
        if status == "succeeded":
            output = p.get("output")
            job.video_url = output[0] if isinstance(output, list) and output else output
            job.video_url_expires_at = time.time() + RESULT_TTL_SECONDS
        elif status == "failed":
            job.error = TaskError(code=GenerationFailed.code,
                                  message=f"Replicate reported the prediction failed. Replicate said: "
                                          f"{clean_remote_text(str(p.get('error') or 'no reason given'), 300)}",
                                  hint="adjust the request as the host's message says, or try again")
        return job


def _timestamp(text: Any) -> float | None:
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()
    except (ValueError, TypeError):
        return None
