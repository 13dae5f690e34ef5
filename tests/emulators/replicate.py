"""A Replicate emulator: model predictions, get, cancel, list, the files API and delivery URLs (https://replicate.com/docs/reference/http)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .base import Emulator, Received, Reply

MODEL = "wan-video/wan-2.7-r2v"
# Each model's input properties (replicate.com/wan-video/wan-2.7-r2v/api, replicate.com/wan-video/wan-2.7-t2v/api).
MODELS = {MODEL: {"prompt", "negative_prompt", "reference_images", "reference_videos", "resolution", "aspect_ratio",
                  "duration", "shot_type", "seed"},
          "wan-video/wan-2.7-t2v": {"prompt", "negative_prompt", "audio", "resolution", "aspect_ratio", "duration",
                                    "enable_prompt_expansion", "seed"},
          "wan-video/wan-2.7-i2v": {"prompt", "negative_prompt", "first_frame", "last_frame", "first_clip", "audio",
                                    "resolution", "duration", "enable_prompt_expansion", "seed"},
          "wan-video/wan-2.7-videoedit": {"prompt", "video", "reference_image", "aspect_ratio", "resolution",
                                          "duration", "audio_setting", "seed"}}


@dataclass
class Prediction:
    id: str
    input: dict[str, Any]
    created: float
    canceled: bool = False
    outcome: str = "succeeded"
    model: str = MODEL


class ReplicateEmulator(Emulator):
    def __init__(self, token: str, results: Callable[[float], bytes]):
        super().__init__()
        self.token, self.results = token, results
        self.starting, self.processing = 0.2, 0.4
        self.predictions: dict[str, Prediction] = {}
        self.files: dict[str, dict[str, Any]] = {}
        self.next_outcome: list[str] = []
        self.continued: dict[str, bytes] = {}  # the videos of continued clips, by prediction

    @property
    def base_url(self) -> str:
        return self.root + "/v1"

    def status_of(self, p: Prediction) -> str:
        if p.canceled:
            return "canceled"
        age = time.time() - p.created
        return "starting" if age < self.starting else "processing" if age < self.starting + self.processing else p.outcome

    def name_of(self, req: Received) -> str:
        path = req.path
        if path.startswith("/v1/models/") and path.endswith("/predictions"):
            return "create"
        if path == "/v1/files":
            return "upload"
        if path.startswith("/delivery/"):
            return "result"
        if path.endswith("/cancel"):
            return "cancel"
        if path.startswith("/v1/predictions"):
            return "poll" if path != "/v1/predictions" else "list"
        return "other"

    def _view(self, p: Prediction) -> dict[str, Any]:
        status = self.status_of(p)
        out = {"id": p.id, "model": p.model, "version": "7b302ecd", "status": status, "input": p.input,
               "output": None, "error": None, "logs": "", "created_at": time.strftime("%Y-%m-%dT%H:%M:%S.000Z",
                                                                                     time.gmtime(p.created)),
               "urls": {"get": f"{self.base_url}/predictions/{p.id}",
                        "cancel": f"{self.base_url}/predictions/{p.id}/cancel"}}
        if status == "succeeded":
            out["output"] = f"{self.root}/delivery/{p.id}/output.mp4"
            out["metrics"] = {"predict_time": 93.2}
        if status == "failed":
            out["error"] = "CUDA out of memory"
        return out

    def _result(self, p: Prediction) -> bytes:
        """The job's video: a continued clip (i2v's first_clip, uploaded to the files API) is continued, as the model
        does; anything else gets the shared video of its length."""
        clip = str(p.input.get("first_clip") or "")
        stored = self.files.get(clip.rstrip("/").split("/")[-1]) if clip.startswith(self.base_url + "/files/") else None
        if stored is None:
            return self.results(p.input.get("duration", 5))
        if p.id not in self.continued:
            import media

            self.continued[p.id] = media.continuation(stored["content"], float(p.input.get("duration", 5)))
        return self.continued[p.id]

    def handle(self, req: Received) -> Reply:
        name = self.name_of(req)
        if name == "result":
            p = self.predictions.get(req.path.split("/")[2])
            if p is None:
                return Reply(404, b"not found")
            return Reply(200, self._result(p), {"Content-Type": "video/mp4"})
        if req.headers.get("authorization") != f"Bearer {self.token}":
            return Reply(401, {"title": "Unauthenticated", "detail": "You did not pass a valid authentication token",
                               "status": 401}, {"Content-Type": "application/problem+json"})
        if name == "upload":
            f = req.files.get("content")
            if not f:
                return Reply(400, {"detail": "missing content", "status": 400})
            fid = uuid.uuid4().hex[:12]
            self.files[fid] = f
            return Reply(201, {"id": fid, "name": f["filename"], "content_type": f["content_type"], "size": f["size"],
                               "urls": {"get": f"{self.base_url}/files/{fid}"}})
        if name == "create":
            model = req.path[len("/v1/models/"):-len("/predictions")]
            if model not in MODELS:
                return Reply(404, {"title": "Not found", "detail": f"model {model} not found", "status": 404})
            inp = (req.json or {}).get("input") or {}
            if set(inp) - MODELS[model]:
                return Reply(422, {"title": "Input validation failed", "status": 422,
                                   "detail": f"input: unknown properties {sorted(set(inp) - MODELS[model])}"})
            if not inp.get("prompt"):
                return Reply(422, {"title": "Input validation failed", "detail": "input: prompt is required",
                                   "status": 422})
            if not 2 <= int(inp.get("duration", 5)) <= (10 if model == MODEL else 15):
                return Reply(422, {"title": "Input validation failed",
                                   "detail": "input.duration: Must be less than or equal to 10", "status": 422})
            p = Prediction(uuid.uuid4().hex[:26], inp, time.time(), model=model)
            if self.next_outcome:
                p.outcome = self.next_outcome.pop(0)
            self.predictions[p.id] = p
            return Reply(201, self._view(p))
        if name == "list":
            return Reply(200, {"next": None, "previous": None,
                               "results": [self._view(p) for p in self.predictions.values()]})
        pid = req.path.split("/")[3]
        p = self.predictions.get(pid)
        if p is None:
            return Reply(404, {"detail": "Not found.", "status": 404})
        if name == "cancel" and self.status_of(p) in ("starting", "processing"):
            p.canceled = True
        return Reply(200, self._view(p))
