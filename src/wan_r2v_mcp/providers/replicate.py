"""Replicate: the official model `wan-video/wan-2.7-r2v` (providers.md §3).

Create through the model's predictions endpoint, poll, cancel; local files through the files API
(multipart, streamed); RFC 7807 errors. Outputs are deleted after 1 h, so the runner downloads at once.
"""

from __future__ import annotations

import mimetypes
import re
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..errors import ProviderError, clean_remote_text
from ..schema import R2VRequest, TaskError
from .base import Capabilities, HostJob
from .hosted import HostedProvider

if TYPE_CHECKING:
    from ..jobs.ledger import TaskRecord
    from ..references.intake import Intake, Reference

BASE_URL = "https://api.replicate.com/v1"
MODEL = "wan-video/wan-2.7-r2v"
RESULT_TTL_SECONDS = 3600
STATUS = {"starting": "queued", "processing": "running", "succeeded": "succeeded", "failed": "failed",
          "canceled": "canceled", "aborted": "canceled"}


class ReplicateProvider(HostedProvider):
    task_id_pattern = re.compile(r"^[a-z0-9]{1,64}$")
    result_domains = ("replicate.delivery", "replicate.com")

    capabilities = Capabilities(
        name="replicate",
        title="Replicate",
        key_env="REPLICATE_API_TOKEN",
        supports=frozenset({"negative_prompt", "shot_type", "seed"}),
        duration_max=10,
    )

    def __init__(self, settings: Any):
        super().__init__(settings)
        self._open(settings.replicate_base_url or BASE_URL, {"Authorization": f"Bearer {settings.api_key('replicate')}"})

    def build_payload(self, request: R2VRequest, intake: Intake, urls: dict[str, str]) -> dict[str, Any]:
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

    async def upload(self, ref: Reference) -> str:
        path = ref.path
        assert path is not None
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        with open(path, "rb") as fh:  # multipart, streamed from disk by httpx
            body = await self._call("POST", "/files", files={"content": (f"ref{path.suffix.lower()}", fh, content_type)})
        url = (body.get("urls") or {}).get("get")
        if not url:
            raise ProviderError(f"Replicate accepted {ref.label} but returned no URL for it", code="upload_failed",
                                retryable=True, fix="try again; or pass the reference as an https URL")
        return url

    async def submit(self, payload: dict[str, Any]) -> HostJob:
        body = await self._call("POST", f"/models/{MODEL}/predictions", json=payload, creates=True)
        if not self.task_id_pattern.match(str(body.get("id") or "")):
            raise ProviderError("Replicate accepted the request but returned no usable prediction id",
                                code="submit_unknown", fix="check your Replicate dashboard before retrying")
        return self._job(body)

    async def poll(self, record: TaskRecord) -> HostJob:
        return self._job(await self._call("GET", f"/predictions/{self._checked(record.provider_task_id)}"))

    async def cancel(self, record: TaskRecord) -> HostJob | None:
        return self._job(await self._call("POST", f"/predictions/{self._checked(record.provider_task_id)}/cancel"))

    async def find_submitted(self, record: TaskRecord, *, since: float, exclude: set[str]) -> list[str] | None:
        body = await self._call("GET", "/predictions")
        prompt = (record.request or {}).get("prompt")
        found = []
        for p in body.get("results") or []:
            pid, created = str(p.get("id") or ""), _timestamp(p.get("created_at"))
            if not self.task_id_pattern.match(pid) or pid in exclude or (created is not None and created < since):
                continue
            if p.get("model") not in (None, MODEL) or (p.get("input") or {}).get("prompt") not in (None, prompt):
                continue
            found.append(pid)
        return found

    def _job(self, p: dict[str, Any]) -> HostJob:
        raw = str(p.get("status") or "starting")
        status = STATUS.get(raw, "running")
        job = HostJob(str(p.get("id")), status, stage=f"Replicate {raw}")  # type: ignore[arg-type]
        if status == "succeeded":
            output = p.get("output")
            job.video_url = output[0] if isinstance(output, list) and output else output
            job.video_url_expires_at = time.time() + RESULT_TTL_SECONDS
        elif status == "failed":
            job.error = TaskError(code="generation_failed",
                                  message=f"Replicate reported the prediction failed. Replicate said: "
                                          f"{clean_remote_text(str(p.get('error') or 'no reason given'), 300)}",
                                  hint="adjust the request as the host's message says, or try again")
        return job

def _timestamp(text: Any) -> float | None:
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
