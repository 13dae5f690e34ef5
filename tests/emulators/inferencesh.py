"""An inference.sh emulator: the app record with its schema, run, task get, cancel, files (https://inference.sh/docs/api/rest/tasks).

Answers in the default v1 envelope {success, status, data}; task statuses are the current SDK's integers,
and a task passes through 9 (UPLOADING) before 10 (COMPLETED).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .base import Emulator, Received, Reply

APP = "alibaba/wan-2-7-r2v"
SOURCE_FIELDS = ["prompt", "negative_prompt", "reference_images", "reference_videos", "first_frame",
                 "reference_voice", "resolution", "ratio", "duration", "prompt_extend", "watermark", "seed"]
# inference-sh/grid, api/alibaba/wan-2-7-t2v/input_schema.json: no ratio, no audio.
T2V_APP = "alibaba/wan-2-7-t2v"
T2V_FIELDS = ["prompt", "negative_prompt", "resolution", "duration", "prompt_extend", "watermark", "seed"]
I2V_APP = "alibaba/wan-2-7-i2v"  # api/alibaba/wan-2-7-i2v/input_schema.json
I2V_FIELDS = ["prompt", "negative_prompt", "first_frame", "last_frame", "driving_audio", "first_clip", "resolution",
              "duration", "prompt_extend", "watermark", "seed"]
EDIT_FIELDS = ["prompt", "negative_prompt", "video", "reference_images", "ratio", "resolution", "duration",
               "audio_setting", "prompt_extend", "watermark", "seed"]  # api/alibaba/wan-2-7-videoedit
APPS = {T2V_APP: T2V_FIELDS, I2V_APP: I2V_FIELDS, "alibaba/wan-2-7-videoedit": EDIT_FIELDS}


@dataclass
class Task:
    id: str
    input: dict[str, Any]
    created: float
    canceled: bool = False
    outcome: int = 10
    app: str = APP


def _ok(data: Any) -> dict[str, Any]:
    return {"success": True, "status": 200, "data": data}


class InferenceShEmulator(Emulator):
    def __init__(self, key: str, results: Callable[[float], bytes]):
        super().__init__()
        self.key, self.results = key, results
        self.fields = list(SOURCE_FIELDS)  # tests may rename them, as a newer app build might
        self.schema_available = True
        self.phases = [(0.15, 2), (0.3, 7), (0.45, 9)]  # (until seconds, status)
        self.tasks: dict[str, Task] = {}
        self.stored: dict[str, dict[str, Any]] = {}
        self.next_outcome: list[int] = []

    def status_of(self, t: Task) -> int:
        if t.canceled:
            return 12
        age = time.time() - t.created
        for until, status in self.phases:
            if age < until:
                return status
        return t.outcome

    def name_of(self, req: Received) -> str:
        p = req.path
        if p == "/apps/run":
            return "create"
        if p == f"/apps/{APP}" or p[len("/apps/"):] in APPS:
            return "app"
        if p == "/files":
            return "files"
        if p.startswith("/storage/"):
            return "upload" if req.method == "PUT" else "result"
        if p.endswith("/cancel"):
            return "cancel"
        if p.startswith("/tasks/"):
            return "poll"
        return "other"

    def _task(self, t: Task) -> dict[str, Any]:
        status = self.status_of(t)
        out: dict[str, Any] = {"id": t.id, "app": t.app, "status": status, "input": t.input, "output": None}
        if status == 10:
            out["output"] = {"video": f"{self.root}/storage/results/{t.id}.mp4", "output_meta": {}}
        if status == 11:
            out["error"] = "upstream DashScope FAILED: InvalidParameter"
        return out

    def handle(self, req: Received) -> Reply:
        name = self.name_of(req)
        if name == "upload":
            self.stored[req.path] = {**req.files["body"], "content_type": req.headers.get("content-type"),
                                     "authorization": req.headers.get("authorization")}
            return Reply(200, b"")
        if name == "result":
            t = self.tasks.get(req.path.rsplit("/", 1)[-1].removesuffix(".mp4"))
            if t is None:
                return Reply(404, b"not found")
            return Reply(200, self.results(t.input.get("duration", 5)), {"Content-Type": "video/mp4"})
        if req.headers.get("authorization") != f"Bearer {self.key}":
            return Reply(401, {"success": False, "status": 401, "error": "invalid api key"})
        if name == "app":
            if not self.schema_available:
                return Reply(404, {"success": False, "status": 404, "error": "not found"})
            app = req.path[len("/apps/"):]
            fields = self.fields if app == APP else APPS[app]
            return Reply(200, _ok({"namespace": "alibaba", "name": app.split("/")[1], "version": {
                "id": "d65d167", "input_schema": {"type": "object", "required": ["prompt"],
                                                  "properties": {f: {} for f in fields}}}}))
        if name == "files":
            out = []
            for f in (req.json or {}).get("files", []):
                key = uuid.uuid4().hex
                out.append({"id": key, "uri": f"https://cloud.inference.sh/u/{key}/{f['filename']}",
                            "upload_url": f"{self.root}/storage/uploads/{key}?sig=x", "filename": f["filename"]})
            return Reply(200, _ok(out))
        if name == "create":
            body = req.json or {}
            app = body.get("app")
            unknown = set(body.get("input", {})) - set(self.fields if app == APP else APPS.get(app, []))
            if (app != APP and app not in APPS) or unknown:
                return Reply(422, {"success": False, "status": 422,
                                   "error": f"input has unknown fields: {sorted(unknown)}"})
            t = Task(uuid.uuid4().hex[:20], body["input"], time.time(), app=app)
            if self.next_outcome:
                t.outcome = self.next_outcome.pop(0)
            self.tasks[t.id] = t
            return Reply(200, _ok(self._task(t)))
        tid = req.path.split("/")[2]
        t = self.tasks.get(tid)
        if t is None:
            return Reply(404, {"success": False, "status": 404, "error": "task not found"})
        if name == "cancel":
            t.canceled = True
        return Reply(200, _ok(self._task(t)))
