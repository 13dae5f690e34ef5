"""fal: the queue endpoint `fal-ai/wan/v2.7/reference-to-video` (providers.md §5).

Submit to the queue; status, result and cancel live under `fal-ai/wan/requests/{id}` (without the
endpoint's sub-path). COMPLETED alone is not success: fetching the result decides. Local files go
through fal's storage upload (initiate, then PUT the bytes to the returned URL).
"""

from __future__ import annotations

import mimetypes
import re
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlparse

import httpx

from ..errors import ProviderError, clean_remote_text
from ..schema import R2VRequest, TaskError
from . import http
from .base import Capabilities, HostJob, ProgressFn, Provider

if TYPE_CHECKING:
    from ..jobs.ledger import TaskRecord
    from ..references.intake import Intake, Reference

QUEUE_URL = "https://queue.fal.run"
REST_URL = "https://rest.fal.ai"
ENDPOINT = "fal-ai/wan/v2.7/reference-to-video"
REQUESTS = "fal-ai/wan/requests"
_ID = re.compile(r"^[A-Za-z0-9-]{1,80}$")
STATUS = {"IN_QUEUE": "queued", "IN_PROGRESS": "running", "COMPLETED": "succeeded", "FAILED": "failed",
          "CANCELED": "canceled", "CANCELLED": "canceled"}


class FalProvider(Provider):
    capabilities = Capabilities(
        name="fal",
        title="fal",
        key_env="FAL_KEY",
        supports=frozenset({"negative_prompt", "shot_type", "seed"}),
        duration_max=10,
        max_voices=0,
        poll_initial_seconds=3.0,
        poll_max_seconds=15.0,
    )

    def __init__(self, settings: Any):
        super().__init__(settings)
        self.queue_url = (settings.fal_queue_url or QUEUE_URL).rstrip("/")
        self.rest_url = (settings.fal_rest_url or REST_URL).rstrip("/")
        self._http = http.client(self.queue_url, {"Authorization": f"Key {settings.api_key('fal')}"})
        self.result_hosts = ("fal.media", "fal.run", "fal.ai", urlparse(self.queue_url).hostname or "",
                             urlparse(self.rest_url).hostname or "")

    async def aclose(self) -> None:
        await self._http.aclose()

    def build_payload(self, request: R2VRequest, intake: Intake, urls: dict[str, str]) -> dict[str, Any]:
        body: dict[str, Any] = {
            "prompt": request.prompt,
            "reference_image_urls": [urls[r.label] for r in intake.references if r.role == "reference_image"],
            "reference_video_urls": [urls[r.label] for r in intake.references if r.role == "reference_video"],
            "aspect_ratio": request.aspect_ratio,
            "resolution": request.resolution,
            "duration": str(request.duration),  # fal's schema takes the seconds as a string enum
        }
        if request.negative_prompt:
            body["negative_prompt"] = request.negative_prompt
        if request.shot_type:
            body["multi_shots"] = request.shot_type == "multi"
        if request.seed is not None:
            body["seed"] = request.seed
        return body

    async def upload(self, ref: Reference) -> str:
        path = ref.path
        assert path is not None
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        init = await self._call("POST", f"{self.rest_url}/storage/upload/initiate", params={"storage_type": "gcs"},
                                json={"file_name": f"ref-{uuid.uuid4().hex}{path.suffix.lower()}",
                                      "content_type": content_type})
        if not init.get("upload_url") or not init.get("file_url"):
            raise ProviderError(f"fal gave no upload address for {ref.label}", code="upload_failed", retryable=True,
                                fix="try again; or pass the reference as an https URL")
        async with httpx.AsyncClient(timeout=http.TIMEOUT) as storage:  # the signed URL needs no key
            response = await storage.put(init["upload_url"], content=http.file_chunks(path),
                                         headers={"Content-Type": content_type,
                                                  "Content-Length": str(path.stat().st_size)})
        if response.status_code >= 300:
            raise ProviderError(f"uploading {ref.label} to fal failed with HTTP {response.status_code}",
                                code="upload_failed", retryable=response.status_code >= 500,
                                fix="try again; or pass the reference as an https URL")
        return init["file_url"]

    async def submit(self, payload: dict[str, Any]) -> HostJob:
        body = await self._call("POST", f"/{ENDPOINT}", json=payload, creates=True)
        request_id = str(body.get("request_id") or "")
        if not _ID.match(request_id):
            raise ProviderError("fal accepted the request but returned no usable request id", code="submit_unknown",
                                fix="check your fal dashboard before retrying")
        return HostJob(request_id, "queued", stage="fal IN_QUEUE")

    async def poll(self, record: TaskRecord) -> HostJob:
        rid = _checked(record.provider_task_id)
        body = await self._call("GET", f"/{REQUESTS}/{rid}/status")
        raw = str(body.get("status") or "IN_QUEUE").upper()
        status = STATUS.get(raw, "running")
        stage = f"fal {raw}" + (f", position {body['queue_position']} in queue" if body.get("queue_position") else "")
        if status != "succeeded":
            job = HostJob(record.provider_task_id or "", status, stage=stage)  # type: ignore[arg-type]
            if status == "failed":
                job.error = TaskError(code="generation_failed", message="fal reported the request failed",
                                      hint="try again")
            return job
        return await self._result(record.provider_task_id or "")

    async def _result(self, request_id: str) -> HostJob:
        """COMPLETED is decided by the result: an error there means the run failed."""
        try:
            body = await self._call("GET", f"/{REQUESTS}/{quote(request_id, safe='')}")
        except ProviderError as exc:
            if exc.retryable:
                raise
            return HostJob(request_id, "failed", stage="fal COMPLETED with an error",
                           error=TaskError(code="generation_failed", message=exc.message,
                                           hint="adjust the request as the host's message says, or try again"))
        video = body.get("video") or {}
        url = video.get("url") if isinstance(video, dict) else None
        if not url:
            return HostJob(request_id, "failed", stage="fal COMPLETED without a video",
                           error=TaskError(code="generation_failed", message="fal finished without a video",
                                           hint="try again"))
        return HostJob(request_id, "succeeded", stage="fal COMPLETED", progress=1.0, video_url=url)

    async def cancel(self, record: TaskRecord) -> HostJob | None:
        rid = _checked(record.provider_task_id)
        try:
            body = await self._call("PUT", f"/{REQUESTS}/{rid}/cancel")
        except ProviderError as exc:  # ALREADY_COMPLETED or NOT_FOUND: the request's own state says what happened
            if exc.retryable:
                raise
            return await self.poll(record)
        if str(body.get("status", "")).upper() == "ALREADY_COMPLETED":
            return await self.poll(record)
        return HostJob(record.provider_task_id or "", "canceled", stage="fal cancellation requested")

    async def download(self, job: HostJob, dest: Path, progress: ProgressFn | None = None) -> None:
        if not job.video_url:
            raise ProviderError("fal reported success without a video", code="download_failed", fix="generate again")
        await http.download(job.video_url, dest, allowed_hosts=self.result_hosts, progress=progress)

    async def _call(self, method: str, url: str, *, creates: bool = False, **kwargs: Any) -> dict[str, Any]:
        return await http.call_json(self._http, method, url, host="fal", error_of=_error, creates=creates, **kwargs)


def _checked(request_id: str | None) -> str:
    if not request_id or not _ID.match(request_id):
        raise ProviderError("the stored fal request id is malformed", code="poll_failed", fix="generate again")
    return quote(request_id, safe="")


def _error(response: httpx.Response) -> ProviderError:
    said = clean_remote_text(http.problem_text(response), 300)
    status = response.status_code
    if status in (401, 403):
        return ProviderError(f"fal refused the key. fal said: {said}", code="auth_failed", fix="check FAL_KEY")
    if status == 429:
        return ProviderError(f"fal is throttling requests. fal said: {said}", code="rate_limited", retryable=True,
                             fix="wait a minute and try again")
    if status in (400, 422):
        return ProviderError(f"fal rejected an input. fal said: {said}", code="host_invalid_parameter",
                             fix="fix what the host names")
    if status == 404:
        return ProviderError(f"fal does not know this request. fal said: {said}", code="not_found", fix="generate again")
    return ProviderError(f"fal answered HTTP {status}. fal said: {said}",
                         code="host_unavailable" if status >= 500 else "host_error", retryable=status >= 500,
                         fix="try again later")
