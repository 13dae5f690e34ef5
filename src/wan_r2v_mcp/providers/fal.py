"""fal: the queue endpoints of Wan 2.7, e.g. `fal-ai/wan/v2.7/reference-to-video` (https://fal.ai/models/fal-ai/wan/v2.7/reference-to-video/api).

Submit to the queue; status, result and cancel live under `fal-ai/wan/requests/{id}` (without the
endpoint's sub-path). COMPLETED alone is not success: fetching the result decides. Local files go
through fal's storage upload (initiate, then PUT the bytes to the returned URL).
"""

from __future__ import annotations

import mimetypes
import re
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlparse

from ..errors import GenerationFailed, ProviderError, SubmitUnknown, UploadRetryable
from ..models.wan3 import voiced_prompt
from ..schema import (
    EDIT_MODEL_ID,
    I2V_MODEL_ID,
    MODEL_ID,
    T2V_MODEL_ID,
    WAN3_MODEL_ID,
    EditRequest,
    I2VRequest,
    Limits,
    R2VRequest,
    T2VRequest,
    TaskError,
)
from .base import Capabilities, HostJob, JobRef, Route, optional_inputs, serves
from .hosted import HostedProvider

if TYPE_CHECKING:
    from ..references.intake import Intake, Reference
    from .host_settings import FalSettings

QUEUE_URL = "https://queue.fal.run"
REST_URL = "https://rest.fal.ai"
REQUESTS = "fal-ai/wan/requests"  # every Wan 2.7 endpoint's requests, without the endpoint's sub-path
STATUS = {"IN_QUEUE": "queued", "IN_PROGRESS": "running", "COMPLETED": "succeeded", "FAILED": "failed",
          "CANCELED": "canceled", "CANCELLED": "canceled"}


class FalProvider(HostedProvider):
    task_id_pattern = re.compile(r"^[A-Za-z0-9-]{1,80}$")
    result_domains = ("fal.media", "fal.run", "fal.ai")

    capabilities = Capabilities(name="fal", title="fal", cancel_is_request=True)
    routes = serves(
        Route(MODEL_ID, "fal-ai/wan/v2.7/reference-to-video", frozenset({"negative_prompt", "shot_type", "seed"}),
              "r2v_payload", duration_max=10),
        # fal.ai/models/fal-ai/wan/v2.7/text-to-video/api: `audio_url` of 3-30 s; no watermark. Its price is "$0.1 per
        # second" in one copy of that page and $0.10/$0.15 by resolution in a catalog: the higher is kept.
        Route(T2V_MODEL_ID, "fal-ai/wan/v2.7/text-to-video",
              frozenset({"negative_prompt", "audio", "prompt_extend", "seed"}), "t2v_payload",
              audio_seconds=(3.0, 30.0), prices={"720p": 0.10, "1080p": 0.15},
              price_source="estimate: fal's page says $0.1 per second, a catalog $0.15 at 1080p; the higher is used"),
        # fal.ai/models/fal-ai/wan/v2.7/image-to-video/api: image_url, end_image_url, video_url ("cannot be combined
        # with image_url"), audio_url; silent on a clip with an end image. $0.10 / $0.15 per second (its page).
        Route(I2V_MODEL_ID, "fal-ai/wan/v2.7/image-to-video", frozenset({
            "negative_prompt", "first_frame", "last_frame", "first_clip", "driving_audio", "prompt_extend", "seed"}),
            "i2v_payload", modes=Limits.I2V_MODES[:5], prices={"720p": 0.10, "1080p": 0.15},
            price_source="fal's model page"),
        # fal.ai/models/fal-ai/wan/v2.7/edit-video/api: video_url, one reference_image_url, duration 0 keeps the
        # clip, no aspect_ratio keeps its shape; no negative prompt, prompt expansion or watermark.
        Route(EDIT_MODEL_ID, "fal-ai/wan/v2.7/edit-video", frozenset({"seed"}), "edit_payload", references_max=1),
        # fal.ai/models/alibaba/wan-3.0/reference-to-video/api: 10 images, 5 clips, 5 audio, 2-30 s; no negative
        # prompt, no frames, no watermark. $0.10 / $0.20 per output second at 720p / 1080p (its page).
        Route(WAN3_MODEL_ID, "alibaba/wan-3.0/reference-to-video", frozenset({"voices", "prompt_extend", "seed"}),
              "wan3_payload", duration_max=Limits.WAN3_DURATION_MAX, duration_max_with_video=Limits.WAN3_DURATION_MAX,
              max_voices=Limits.WAN3_AUDIO_MAX,
              prices={"720p": 0.10, "1080p": 0.20},
              price_source="fal's model page: per output second", input_billed=False),
    )

    def __init__(self, settings: Any):
        super().__init__(settings)
        own: FalSettings = self.own  # type: ignore[assignment]
        self.rest_url = (own.rest_url or REST_URL).rstrip("/")
        self._open(own.queue_url or QUEUE_URL, {"Authorization": f"Key {self.key}"},
                   extra_hosts=(urlparse(self.rest_url).hostname or "",))

    def r2v_payload(self, request: R2VRequest, intake: Intake, urls: dict[str, str], route: Route) -> dict[str, Any]:
        body: dict[str, Any] = {
            "prompt": request.prompt,
            "reference_image_urls": [urls[r.label] for r in intake.references if r.role == "reference_image"],
            "reference_video_urls": [urls[r.label] for r in intake.references if r.role == "reference_video"],
            "aspect_ratio": request.aspect_ratio,
            "resolution": request.resolution,
            "duration": request.duration,  # an integer since August 2026 (the model's API page)
        }
        if request.negative_prompt:
            body["negative_prompt"] = request.negative_prompt
        if request.shot_type:
            body["multi_shots"] = request.shot_type == "multi"
        if request.seed is not None:
            body["seed"] = request.seed
        return body

    def wan3_payload(self, request: R2VRequest, intake: Intake, urls: dict[str, str], route: Route) -> dict[str, Any]:
        """Each voice goes as a reference audio "Audio k", which the prompt names."""
        body: dict[str, Any] = {
            "prompt": voiced_prompt(request.prompt, [r.label for r in intake.voiced]),
            "reference_image_urls": [urls[r.label] for r in intake.references if r.role == "reference_image"],
            "reference_video_urls": [urls[r.label] for r in intake.references if r.role == "reference_video"],
            "reference_audio_urls": [urls[r.voice.label] for r in intake.voiced if r.voice],
            "aspect_ratio": request.aspect_ratio, "resolution": request.resolution, "duration": request.duration,
        }
        body.update(optional_inputs(request, "enable_prompt_expansion"))
        return body

    def i2v_payload(self, request: I2VRequest, intake: Intake, urls: dict[str, str], route: Route) -> dict[str, Any]:
        names = {"first_frame": "image_url", "last_frame": "end_image_url", "first_clip": "video_url",
                 "driving_audio": "audio_url"}
        body: dict[str, Any] = {"prompt": request.prompt}
        for ref in intake.references:
            body[names[ref.role]] = urls[ref.label]
        body.update(resolution=request.resolution, duration=request.duration)
        body.update(optional_inputs(request, "enable_prompt_expansion"))
        return body

    def edit_payload(self, request: EditRequest, intake: Intake, urls: dict[str, str], route: Route) -> dict[str, Any]:
        names = {"video": "video_url", "reference_image": "reference_image_url"}
        body: dict[str, Any] = {"prompt": request.prompt}
        for ref in intake.references:
            body[names[ref.role]] = urls[ref.label]
        body.update(resolution=request.resolution, duration=request.duration, audio_setting=request.audio_setting)
        if request.aspect_ratio:
            body["aspect_ratio"] = request.aspect_ratio
        body.update(optional_inputs(request, "enable_prompt_expansion"))
        return body

    def t2v_payload(self, request: T2VRequest, intake: Intake, urls: dict[str, str], route: Route) -> dict[str, Any]:
        body: dict[str, Any] = {"prompt": request.prompt, "aspect_ratio": request.aspect_ratio,
                                "resolution": request.resolution, "duration": request.duration}
        for ref in intake.references:
            if ref.role == "audio":
                body["audio_url"] = urls[ref.label]
        body.update(optional_inputs(request, "enable_prompt_expansion"))
        return body

    async def check_access(self) -> str:
        # An upload address, asked for and never used: free, and it needs the key (nothing is stored or run).
        init = await self._call("POST", f"{self.rest_url}/storage/upload/initiate", params={"storage_type": "gcs"},
                                json={"file_name": "doctor-check.png", "content_type": "image/png"}, attempts=1)
        if not isinstance(init, dict) or not init.get("upload_url"):
            raise UploadRetryable("fal accepted the key but gave no upload address",
                                  fix="local files cannot be uploaded now: pass references as https URLs")
        return "the key works; fal storage answers"

    async def upload(self, ref: Reference, route: Route, *, scope: str = "") -> str:
        opened = ref.opened
        assert opened is not None
        content_type = mimetypes.guess_type(f"x{opened.suffix}")[0] or "application/octet-stream"
        init = await self._call("POST", f"{self.rest_url}/storage/upload/initiate", params={"storage_type": "gcs"},
                                json={"file_name": f"ref-{uuid.uuid4().hex}{opened.suffix}",
                                      "content_type": content_type})
        if not isinstance(init, dict) or not init.get("upload_url") or not init.get("file_url"):
            raise UploadRetryable(f"fal gave no upload address for {ref.label}",
                                  fix="try again; or pass the reference as an https URL")
        await self._put(str(init["upload_url"]), ref, content_type)  # the signed URL needs no key
        return str(init["file_url"])

    async def submit(self, payload: dict[str, Any], route: Route) -> HostJob:
        body = await self._call("POST", f"/{route.host_model}", json=payload, creates=True)
        request_id = str((body or {}).get("request_id") or "") if isinstance(body, dict) else ""
        if not self.task_id_pattern.match(request_id):
            raise SubmitUnknown("fal accepted the request but returned no usable request id",
                                fix="the job may exist at fal; fal cannot list jobs, so check your fal dashboard")
        return HostJob(request_id, "queued", stage="fal IN_QUEUE")

    def _requests(self, model: str | None) -> str:
        """Where a model's requests live: its endpoint's app, the first two parts of its path (fal's queue docs,
        https://docs.fal.ai/model-endpoints/queue: status, result and cancel go without the endpoint's sub-path)."""
        route = self.routes.get(model or "")
        return "/".join(route.host_model.split("/")[:2]) + "/requests" if route is not None else REQUESTS

    async def poll(self, job: JobRef) -> HostJob:
        rid = self._checked(job.provider_task_id)
        body = await self._call("GET", f"/{self._requests(job.model)}/{rid}/status")
        raw = str(body.get("status") or "IN_QUEUE").upper()
        status = STATUS.get(raw, "running")
        stage = f"fal {raw}" + (f", position {body['queue_position']} in queue" if body.get("queue_position") else "")
        if status != "succeeded":
            state = HostJob(job.provider_task_id, status, stage=stage)  # type: ignore[arg-type]
            if status == "failed":
                state.error = TaskError(code=GenerationFailed.code, message="fal reported the request failed",
                                        hint="try again")
            return state
        return await self._result(job.provider_task_id, job.model)

    async def _result(self, request_id: str, model: str | None) -> HostJob:
        """COMPLETED is decided by the result: an error there means the run failed."""
        try:
            body = await self._call("GET", f"/{self._requests(model)}/{quote(request_id, safe='')}")
        except ProviderError as exc:
            if exc.retryable:
                raise
            return HostJob(request_id, "failed", stage="fal COMPLETED with an error",
                           error=TaskError(code=GenerationFailed.code, message=exc.message,
                                           hint="adjust the request as the host's message says, or try again"))
        video = body.get("video") or {}
        url = video.get("url") if isinstance(video, dict) else None
        if not url:
            return HostJob(request_id, "failed", stage="fal COMPLETED without a video",
                           error=TaskError(code=GenerationFailed.code, message="fal finished without a video",
                                           hint="try again"))
        return HostJob(request_id, "succeeded", stage="fal COMPLETED", progress=1.0, video_url=url)

    async def cancel(self, job: JobRef) -> HostJob | None:
        rid = self._checked(job.provider_task_id)
        before = await self.poll(job)
        if before.status not in ("queued", "running"):
            return before
        try:
            body = await self._call("PUT", f"/{self._requests(job.model)}/{rid}/cancel")
        except ProviderError as exc:  # ALREADY_COMPLETED or NOT_FOUND: the request's own state says what happened
            if exc.retryable:
                raise
            return await self.poll(job)
        if str((body or {}).get("status", "")).upper() == "ALREADY_COMPLETED":
            return await self.poll(job)
        if before.status == "queued":  # taken out of the queue before it started: nothing runs or bills
            return HostJob(job.provider_task_id, "canceled", stage="fal canceled the request while it was queued")
        # A running request only gets a signal it may ignore: it can still finish and bill (https://docs.fal.ai/model-endpoints/queue, "Cancel").
        return HostJob(job.provider_task_id, "running",
                       stage="fal cancellation requested; following the request until fal says it ended")
