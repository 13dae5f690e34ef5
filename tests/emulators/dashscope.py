"""A DashScope emulator: create, query, cancel, getPolicy, the OSS form upload, and result files.

Follows Alibaba Model Studio's wan2.7-r2v and wan2.7-t2v API references (the same endpoint; t2v takes no media, its
audio is `input.audio_url`; a temporary upload serves only the model its policy was asked for): tasks go PENDING -> RUNNING -> SUCCEEDED (or FAILED) over configurable times,
the create needs `X-DashScope-Async: enable` and (with oss:// inputs) `X-DashScope-OssResourceResolve`,
only PENDING tasks can be canceled, unknown ids answer UNKNOWN, results are a real MP4 for 24 h.
"""

from __future__ import annotations

import calendar
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .base import Emulator, Received, Reply

API = "/api/v1"
# The input fields of each model this emulator serves.
MODELS = {"wan2.7-r2v": {"prompt", "negative_prompt", "media"},
          "wan2.7-t2v": {"prompt", "negative_prompt", "audio_url"},
          "wan2.7-i2v": {"prompt", "negative_prompt", "media"},
          "wan2.7-videoedit": {"prompt", "negative_prompt", "media"},
          "wan3.0-video": {"prompt", "media"}}  # no negative prompt (the wan3.0-video API reference)
WAN3_MEDIA_MAX = {"reference_image": 10, "reference_video": 5, "reference_audio": 5, "first_frame": 1, "last_frame": 1}
# wan2.7-i2v's media: six combinations of types, each at most once (its API reference).
I2V_MODES = [{"first_frame"}, {"first_frame", "driving_audio"}, {"first_frame", "last_frame"},
             {"first_frame", "last_frame", "driving_audio"}, {"first_clip"}, {"first_clip", "last_frame"}]


@dataclass
class HostTask:
    task_id: str
    body: dict[str, Any]
    created: float
    canceled: bool = False
    outcome: str = "SUCCEEDED"  # or FAILED / UNKNOWN
    failure: tuple[str, str] = ("InvalidParameter", "The media url is invalid.")
    polls: int = 0
    pending: float | None = None  # this job's own timing, else the emulator's
    running: float | None = None

    def done_at(self, timing: Timing) -> float:
        """When the host finishes it (for measuring how soon the result lands on disk)."""
        return self.created + (self.pending if self.pending is not None else timing.pending) + (
            self.running if self.running is not None else timing.running)


@dataclass
class Timing:
    pending: float = 0.2
    running: float = 0.4


class DashScopeEmulator(Emulator):
    def __init__(self, api_key: str, results: Callable[[float], bytes]):
        super().__init__()
        self.api_key = api_key
        self.results = results
        self.tag_results = False  # each result video carries its job id (for the soak and kill harnesses)
        self.job_timing: Callable[[], tuple[float, float]] | None = None  # (pending, running) per new job
        self.shape_job: Callable[[HostTask], None] | None = None  # sets a new job's timing or outcome from its body
        self.rate_limit: float | None = None  # status calls (poll, list) per second before a 429
        self.throttled = 0  # 429s sent because of rate_limit
        self._bucket = (0.0, 0.0)  # tokens, last refill
        self.timing = Timing()
        self.tasks: dict[str, HostTask] = {}
        self.next_outcome: list[tuple[str, tuple[str, str] | None]] = []
        self.results_expired = False
        self.uploaded: dict[str, dict[str, Any]] = {}  # oss key -> file facts
        self.render_results = False  # each job's result rendered for it (else one shared video per length)
        # How long a job's result really lasts, given the seconds asked (a host may deliver shorter or longer).
        self.length_of: Callable[[HostTask, float], float] | None = None
        self.with_audio = False  # rendered results carry a sound track
        self._rendered: dict[str, bytes] = {}
        self._tasks_lock = threading.Lock()

    @property
    def base_url(self) -> str:
        return self.root + API

    def status_of(self, task: HostTask) -> str:
        if task.canceled:
            return "CANCELED"
        age = time.time() - task.created
        pending = task.pending if task.pending is not None else self.timing.pending
        if age < pending:
            return "PENDING"
        if time.time() < task.done_at(self.timing):
            return "RUNNING"
        return task.outcome

    def name_of(self, req: Received) -> str:
        p = req.path
        if p == f"{API}/services/aigc/video-generation/video-synthesis":
            return "create"
        if p == f"{API}/uploads":
            return "policy"
        if p == "/oss":
            return "upload"
        if p.startswith("/results/"):
            return "result"
        if p.endswith("/cancel"):
            return "cancel"
        if p.startswith(f"{API}/tasks/"):
            return "poll"
        if p == f"{API}/tasks":
            return "list"
        return "other"

    def handle(self, req: Received) -> Reply:
        name = self.name_of(req)
        if name == "upload":
            return self._upload(req)
        if name == "result":
            if self.results_expired:
                return Reply(403, b"<Error><Code>AccessDenied</Code><Message>Request has expired.</Message></Error>")
            with self._tasks_lock:
                task = self.tasks.get(req.path[len("/results/"):].removesuffix(".mp4"))
            if task is None:
                return Reply(404, b"<Error><Code>NoSuchKey</Code></Error>")
            return Reply(200, self.result_bytes(task), {"Content-Type": "video/mp4"})
        if req.headers.get("authorization") != f"Bearer {self.api_key}":
            return Reply(401, {"request_id": _rid(), "code": "InvalidApiKey",
                               "message": "Invalid API-key provided."})
        if name in ("poll", "list") and self.rate_limit and not self._take_token():
            self.throttled += 1
            return Reply(429, {"request_id": _rid(), "code": "Throttling", "message": "Requests rate limit exceeded"},
                         {"Retry-After": "1"})
        if name == "create":
            return self._create(req)
        if name == "policy":
            return Reply(200, {"request_id": _rid(), "data": {
                "policy": "eyJleHBpcmF0aW9uIjoiMjAyNi0xMS0yNVQwMDowMDowMFoifQ==", "signature": "c2lnbmF0dXJl",
                "upload_dir": f"dashscope-instant/{req.query.get('model')}/2026-11-23/{uuid.uuid4().hex[:8]}",
                "upload_host": f"{self.root}/oss", "expire_in_seconds": 300, "max_file_size_mb": 1024,
                "capacity_limit_mb": 999999, "oss_access_key_id": "LTAI-emulated", "x_oss_object_acl": "private",
                "x_oss_forbid_overwrite": "true"}})
        if name == "list":
            return self._list(req)
        task_id = req.path[len(f"{API}/tasks/"):].removesuffix("/cancel")
        with self._tasks_lock:
            task = self.tasks.get(task_id)
        if name == "cancel":
            if task is None:
                return Reply(404, {"request_id": _rid(), "code": "InvalidParameter", "message": "task not found"})
            if self.status_of(task) != "PENDING":
                return Reply(400, {"request_id": _rid(), "code": "UnsupportedOperation",
                                   "message": "Only tasks in PENDING status can be canceled."})
            task.canceled = True
            return Reply(200, {"request_id": _rid()})
        if name == "poll":
            return self._query(task_id, task)
        return Reply(404, {"code": "NotFound", "message": req.path})

    def _create(self, req: Received) -> Reply:
        if req.headers.get("x-dashscope-async") != "enable":
            return Reply(403, {"request_id": _rid(), "code": "AccessDenied",
                               "message": "current user api does not support synchronous calls"})
        body = req.json or {}
        model = body.get("model")
        if model not in MODELS:
            return Reply(404, {"request_id": _rid(), "code": "Model.NotExist", "message": "Model not exist."})
        given = body.get("input", {})
        if set(given) - MODELS[model]:
            return Reply(400, {"request_id": _rid(), "code": "InvalidParameter",
                               "message": f"{model} does not take {sorted(set(given) - MODELS[model])}"})
        types = [item.get("type") for item in given.get("media", [])]
        if model == "wan2.7-i2v" and (len(types) != len(set(types)) or set(types) not in I2V_MODES):
            return Reply(400, {"request_id": _rid(), "code": "InvalidParameter",
                               "message": f"The media combination {sorted(types)} is not supported."})
        if model == "wan2.7-videoedit" and (types.count("video") != 1 or types.count("reference_image") > 4
                                            or set(types) - {"video", "reference_image"}):
            return Reply(400, {"request_id": _rid(), "code": "InvalidParameter",
                               "message": "Video editing takes one video and at most 4 reference images."})
        if model == "wan3.0-video":
            # Served on workspace hosts only: a request that names no workspace is not served.
            if not req.headers.get("x-dashscope-workspace"):
                return Reply(404, {"request_id": _rid(), "code": "Model.NotExist", "message": "Model not exist."})
            if any(t not in WAN3_MEDIA_MAX or types.count(t) > WAN3_MEDIA_MAX[t] for t in types) or \
                    not 2 <= int(body.get("parameters", {}).get("duration", 5)) <= 30:
                return Reply(400, {"request_id": _rid(), "code": "InvalidParameter",
                                   "message": "The media or duration is out of range."})
        urls = [v for item in given.get("media", []) for k, v in item.items() if k != "type"]
        urls += [given["audio_url"]] if "audio_url" in given else []
        if any(str(u).startswith("oss://") for u in urls):
            if req.headers.get("x-dashscope-ossresourceresolve") != "enable":
                return Reply(400, {"request_id": _rid(), "code": "InvalidParameter",
                                   "message": "The oss url requires X-DashScope-OssResourceResolve."})
            for u in urls:
                key = str(u)[6:]
                if str(u).startswith("oss://") and (key not in self.uploaded or
                                                    not key.startswith(f"dashscope-instant/{model}/")):
                    return Reply(400, {"request_id": _rid(), "code": "InvalidParameter",
                                       "message": f"The media url is invalid: {u}"})
        task = self.make_job(body)
        if model == "wan3.0-video" and {"first_frame", "last_frame"} & set(types) and \
                {"reference_image", "reference_video", "reference_audio"} & set(types):
            # Accepted, then failed: how Alibaba's own sample shows the two modes mixed.
            task.outcome, task.failure = "FAILED", ("InvalidParameter", "The two modes are mutually exclusive. Do not "
                                                    "pass reference_xx and first_frame/last_frame at the same time.")
        return Reply(200, {"request_id": _rid(), "output": {"task_id": task.task_id, "task_status": "PENDING"}})

    def _take_token(self) -> bool:
        """A token bucket: `rate_limit` per second, bursts of one second's worth."""
        assert self.rate_limit
        with self._tasks_lock:
            tokens, last = self._bucket
            now = time.monotonic()
            tokens = min(self.rate_limit, tokens + (now - last) * self.rate_limit)
            ok = tokens >= 1.0
            self._bucket = (tokens - 1.0 if ok else tokens, now)
            return ok

    def make_job(self, body: dict[str, Any]) -> HostTask:
        """A job as the host makes it on a create (also how another client of the same key makes one)."""
        task = HostTask(task_id=str(uuid.uuid4()), body=body, created=time.time())
        if self.job_timing is not None:
            task.pending, task.running = self.job_timing()
        if self.next_outcome:
            outcome, failure = self.next_outcome.pop(0)
            task.outcome = outcome
            if failure:
                task.failure = failure
        if self.shape_job is not None:
            self.shape_job(task)
        with self._tasks_lock:
            self.tasks[task.task_id] = task
        return task

    def result_bytes(self, task: HostTask) -> bytes:
        seconds = task.body.get("parameters", {}).get("duration") or 5  # an edit's 0: the source's length
        if self.length_of is not None:
            seconds = self.length_of(task, seconds)
        first = next((m["url"] for m in task.body.get("input", {}).get("media", []) if m.get("type") == "first_frame"),
                     None)
        if self.render_results or first is not None:
            return self._render(task, seconds, first)
        return self.results(seconds, task.task_id) if self.tag_results else self.results(seconds)

    def _render(self, task: HostTask, seconds: float, first: str | None) -> bytes:
        """A result of the job's own: with a first_frame it opens on that image at its shape, as Wan 2.7 does
        (the model's API reference), then drifts to a colour of its own; with `with_audio`, it has a sound track."""
        import io
        import tempfile
        from pathlib import Path

        import media
        from PIL import Image

        with self._tasks_lock:
            if task.task_id in self._rendered:
                return self._rendered[task.task_id]
        image = None
        if first is not None and str(first).startswith("oss://"):
            content = self.uploaded.get(str(first)[6:], {}).get("content")
            image = Image.open(io.BytesIO(content)).convert("RGB") if content else None
        width, height = image.size if image is not None else ((160, 96) if self.tag_results else (480, 270))
        seed = task.body.get("parameters", {}).get("seed")  # a seed of its own looks its own, however many render at once
        hue = seed * 70 if seed is not None else len(self._rendered) * 70
        with tempfile.TemporaryDirectory() as folder:
            path = media.video(Path(folder) / "r.mp4", width - width % 2, height - height % 2, seconds=float(seconds),
                               fps=10, audio=self.with_audio, first=image, hue=hue,
                               comment=task.task_id if self.tag_results else None)
            data = path.read_bytes()
        with self._tasks_lock:
            self._rendered[task.task_id] = data
        return data

    def _list(self, req: Received) -> Reply:
        """GET /tasks: start_time and end_time in UTC+8 (YYYYMMDDhhmmss), at most 24 hours apart (DashScope's task list reference)."""
        def read(name: str) -> float | None:
            text = req.query.get(name)
            if not text:
                return None
            return calendar.timegm(time.strptime(text, "%Y%m%d%H%M%S")) - 8 * 3600

        start, end = read("start_time"), read("end_time")
        if start is not None and end is not None and end - start > 24 * 3600:
            return Reply(400, {"request_id": _rid(), "code": "InvalidParameter",
                               "message": "The time range between start_time and end_time cannot exceed 24 hours."})
        page, size = int(req.query.get("page_no", 1)), int(req.query.get("page_size", 10))
        with self._tasks_lock:
            rows = [{"task_id": t.task_id, "model_name": t.body.get("model"), "status": self.status_of(t),
                     "gmt_create": int(t.created * 1000)} for t in self.tasks.values()
                    if (start is None or t.created >= start) and (end is None or t.created <= end)
                    and req.query.get("model_name") in (None, t.body.get("model"))]
        rows.sort(key=lambda r: -r["gmt_create"])
        return Reply(200, {"request_id": _rid(), "data": rows[(page - 1) * size:page * size], "total": len(rows),
                           "page_no": page, "page_size": size})

    def _query(self, task_id: str, task: HostTask | None) -> Reply:
        if task is None:
            return Reply(200, {"request_id": _rid(), "output": {"task_id": task_id, "task_status": "UNKNOWN"}})
        task.polls += 1
        status = self.status_of(task)
        output: dict[str, Any] = {"task_id": task_id, "task_status": status,
                                  "submit_time": "2026-11-23 18:00:00.000"}
        reply: dict[str, Any] = {"request_id": _rid(), "output": output}
        if status == "SUCCEEDED":
            params = task.body.get("parameters", {})
            videos = [m for m in task.body["input"].get("media", []) if m["type"] == "reference_video"]
            input_seconds = 5.0 if videos else 0
            output["orig_prompt"] = task.body["input"]["prompt"]  # shown only once it succeeded (DashScope's task list reference)
            output["video_url"] = f"{self.root}/results/{task_id}.mp4?Expires=1790000000&Signature=x"
            reply["usage"] = {"duration": input_seconds + (params.get("duration") or 5),
                              "input_video_duration": input_seconds,
                              "output_video_duration": params.get("duration") or 5, "video_count": 1,
                              "SR": int(params.get("resolution", "1080P")[:-1]), "ratio": params.get("ratio", "16:9")}
        elif status == "FAILED":
            output["code"], output["message"] = task.failure
        return Reply(200, reply)

    def _upload(self, req: Received) -> Reply:
        needed = ("OSSAccessKeyId", "Signature", "policy", "key", "x-oss-object-acl", "x-oss-forbid-overwrite",
                  "success_action_status")
        if any(k not in req.form for k in needed) or "file" not in req.files:
            return Reply(400, b"<Error><Code>InvalidArgument</Code></Error>")
        self.uploaded[req.form["key"]] = {**req.files["file"], "form": dict(req.form)}
        return Reply(200, b"")


def _rid() -> str:
    return str(uuid.uuid4())
