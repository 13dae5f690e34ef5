"""A fal emulator: the queue (submit, status, result, cancel) and the storage upload (https://fal.ai/models/fal-ai/wan/v2.7/reference-to-video/api).

COMPLETED does not mean success: a failed run's result answers an HTTP error with a detail.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .base import Emulator, Received, Reply

ENDPOINT = "/fal-ai/wan/v2.7/reference-to-video"
# Each endpoint's input properties (fal.ai/models/fal-ai/wan/v2.7/{reference-to-video,text-to-video}/api).
ENDPOINTS = {ENDPOINT: {"prompt", "negative_prompt", "reference_image_urls", "reference_video_urls", "aspect_ratio",
                        "resolution", "duration", "multi_shots", "seed"},
             "/fal-ai/wan/v2.7/text-to-video": {"prompt", "negative_prompt", "audio_url", "aspect_ratio", "resolution",
                                                "duration", "enable_prompt_expansion", "seed"},
             "/fal-ai/wan/v2.7/image-to-video": {"prompt", "negative_prompt", "image_url", "end_image_url", "video_url",
                                                 "audio_url", "resolution", "duration", "enable_prompt_expansion",
                                                 "seed", "enable_safety_checker"},
             "/fal-ai/wan/v2.7/edit-video": {"prompt", "video_url", "reference_image_url", "aspect_ratio", "resolution",
                                             "duration", "audio_setting", "seed", "enable_safety_checker"},
             # fal.ai/models/alibaba/wan-3.0/reference-to-video/api: an app of its own, its requests under it.
             "/alibaba/wan-3.0/reference-to-video": {"prompt", "reference_image_urls", "reference_video_urls",
                                                     "reference_audio_urls", "file_url", "web_url", "resolution",
                                                     "aspect_ratio", "duration", "audio", "enable_prompt_expansion",
                                                     "enable_thinking", "seed", "enable_safety_checker"}}


def requests_of(endpoint: str) -> str:
    """Where an endpoint's requests live: under its app, the first two parts of its path."""
    return "/" + "/".join(endpoint.strip("/").split("/")[:2]) + "/requests/"


@dataclass
class Request:
    id: str
    input: dict[str, Any]
    created: float
    canceled: bool = False
    fails: bool = False
    endpoint: str = ENDPOINT


class FalEmulator(Emulator):
    def __init__(self, key: str, results: Callable[[float], bytes]):
        super().__init__()
        self.key, self.results = key, results
        self.in_queue, self.in_progress = 0.2, 0.4
        self.requests: dict[str, Request] = {}
        self.stored: dict[str, dict[str, Any]] = {}
        self.next_fails = False
        self.continued: dict[str, bytes] = {}  # the videos of continued clips, by request

    def status_of(self, r: Request) -> str:
        age = time.time() - r.created
        return "IN_QUEUE" if age < self.in_queue else "IN_PROGRESS" if age < self.in_queue + self.in_progress \
            else "COMPLETED"

    def name_of(self, req: Received) -> str:
        p = req.path
        if p in ENDPOINTS:
            return "create"
        if p == "/storage/upload/initiate":
            return "initiate"
        if p.startswith("/gcs/"):
            return "upload"
        if p.startswith("/media/"):
            return "result"
        if "/requests/" in p:
            return "cancel" if p.endswith("/cancel") else "poll" if p.endswith("/status") else "fetch"
        return "other"

    def _result(self, r: Request) -> bytes:
        """The job's video: a clip to continue (i2v's video_url, uploaded to fal's storage) is continued, as the
        model does; anything else gets the shared video of its length."""
        clip = str(r.input.get("video_url") or "") if r.endpoint.endswith("/image-to-video") else ""
        stored = self.stored.get(f"/gcs/{clip.split('/files/')[-1].split('/')[0]}") if "/files/" in clip else None
        if stored is None:
            return self.results(r.input.get("duration") or 5)
        if r.id not in self.continued:
            import media

            self.continued[r.id] = media.continuation(stored["content"], float(r.input.get("duration") or 5))
        return self.continued[r.id]

    def handle(self, req: Received) -> Reply:
        name = self.name_of(req)
        if name == "upload":
            self.stored[req.path] = {**req.files["body"], "authorization": req.headers.get("authorization")}
            return Reply(200, b"")
        if name == "result":
            r = self.requests.get(req.path[len("/media/"):].removesuffix(".mp4"))
            if r is None:
                return Reply(404, b"not found")
            return Reply(200, self._result(r), {"Content-Type": "video/mp4"})
        if req.headers.get("authorization") != f"Key {self.key}":
            return Reply(401, {"detail": "Invalid key"})
        if name == "initiate":
            key = uuid.uuid4().hex
            return Reply(200, {"upload_url": f"{self.root}/gcs/{key}?X-Goog-Signature=x",
                               "file_url": f"https://v3.fal.media/files/{key}/{(req.json or {}).get('file_name')}"})
        if name == "create":
            body = req.json or {}
            if set(body) - ENDPOINTS[req.path]:
                return Reply(422, {"detail": [{"loc": ["body", k], "msg": "Extra inputs are not permitted"}
                                              for k in sorted(set(body) - ENDPOINTS[req.path])]})
            if type(body.get("duration", 5)) is not int:  # integers since August 2026 (the model's API page)
                return Reply(422, {"detail": [{"loc": ["body", "duration"], "msg": "Input should be a valid integer"}]})
            r = Request(uuid.uuid4().hex, body, time.time(), fails=self.next_fails, endpoint=req.path)
            self.next_fails = False
            self.requests[r.id] = r
            base = self.root + requests_of(req.path) + r.id
            return Reply(200, {"request_id": r.id, "response_url": base, "status_url": base + "/status",
                               "cancel_url": base + "/cancel", "queue_position": 0})
        app, _, rest = req.path.partition("/requests/")
        r = self.requests.get(rest.split("/")[0])
        if r is None or requests_of(r.endpoint) != app + "/requests/":  # another app's requests are not found here
            return Reply(404, {"detail": "Request not found"})
        status = self.status_of(r)
        if name == "cancel":
            if status == "COMPLETED":
                return Reply(400, {"status": "ALREADY_COMPLETED"})
            r.canceled = True
            return Reply(202, {"status": "CANCELLATION_REQUESTED"})
        if name == "poll":
            return Reply(200, {"status": status, "queue_position": 0 if status == "IN_QUEUE" else None,
                               "response_url": self.root + requests_of(r.endpoint) + r.id})
        if status != "COMPLETED":
            return Reply(400, {"detail": "Request is still in progress"})
        if r.fails:
            return Reply(422, {"detail": "Content policy violation: the prompt was flagged"})
        return Reply(200, {"video": {"url": f"{self.root}/media/{r.id}.mp4", "content_type": "video/mp4",
                                     "file_name": "output.mp4",
                                     "file_size": len(self._result(r))},
                           "seed": 42, "actual_prompt": r.input.get("prompt")})
