"""inference.sh: the app `alibaba/wan-2-7-r2v` (https://inference.sh/docs/api/rest/tasks).

Run, task get, cancel; integer statuses of the current SDK (9 = uploading is NOT done); the file flow
(create a file, PUT the bytes, use its uri). The live app's input schema may name fields differently
from the source we know, so it is read from `GET /apps/alibaba/wan-2-7-r2v` when that answers.
"""

from __future__ import annotations

import mimetypes
import re
from typing import TYPE_CHECKING, Any

from ..errors import Billing, HostRefused, InputError, ProviderError, SubmitUnknown, UploadRetryable, clean_remote_text
from ..schema import (
    EDIT_MODEL_ID,
    I2V_MODEL_ID,
    MODEL_ID,
    T2V_MODEL_ID,
    EditRequest,
    I2VRequest,
    R2VRequest,
    T2VRequest,
    TaskError,
)
from .base import Capabilities, HostJob, JobRef, Route, optional_inputs, serves
from .hosted import HostedProvider

if TYPE_CHECKING:
    from ..references.intake import Intake, Reference
    from .host_settings import InferenceShSettings

BASE_URL = "https://api.inference.sh"
APP = "alibaba/wan-2-7-r2v"
# Current SDK numbering (the inferencesh SDK's TaskStatus): 0-6 waiting, 7-9 working (9 is UPLOADING, not done).
_INT_STATUS = {**{i: "queued" for i in range(7)}, 7: "running", 8: "running", 9: "running", 10: "succeeded",
               11: "failed", 12: "canceled", 13: "failed"}
_STR_STATUS = {"received": 1, "queued": 2, "dispatched": 3, "preparing": 4, "serving": 5, "setting_up": 6,
               "running": 7, "cancelling": 8, "uploading": 9, "completed": 10, "failed": 11, "cancelled": 12,
               "rejected": 13}
_INT_NAME = {v: k for k, v in _STR_STATUS.items()}
# Our field -> the names the app may use for it, the source's names first (GRID input_schema.json).
FIELD_NAMES = {
    "reference_images": ("reference_images", "images"),
    "reference_videos": ("reference_videos", "videos"),
    "first_frame": ("first_frame", "first_frame_image", "image"),
    "reference_voice": ("reference_voice", "audio"),
    "ratio": ("ratio", "aspect_ratio"),
}


class InferenceShProvider(HostedProvider):
    task_id_pattern = re.compile(r"^[A-Za-z0-9_-]{1,80}$")
    result_domains = ("inference.sh",)

    capabilities = Capabilities(name="inferencesh", title="inference.sh")
    routes = serves(
        Route(MODEL_ID, APP, frozenset({"negative_prompt", "first_frame", "voices", "prompt_extend", "watermark",
                                        "seed"}), "r2v_payload", max_voices=1, media_max=5),
        # The app alibaba/wan-2-7-t2v (inference-sh/grid, api/alibaba/wan-2-7-t2v/input_schema.json) sends DashScope no
        # ratio and no audio: it always makes 16:9, with sound of the model's own.
        Route(T2V_MODEL_ID, "alibaba/wan-2-7-t2v", frozenset({"negative_prompt", "prompt_extend", "watermark", "seed"}),
              "t2v_payload", only=(("aspect_ratio", "16:9"),)),
        # The app alibaba/wan-2-7-i2v (inference-sh/grid, api/alibaba/wan-2-7-i2v/input_schema.json) forwards any
        # combination to DashScope: the model's six are checked here first.
        Route(I2V_MODEL_ID, "alibaba/wan-2-7-i2v", frozenset({"negative_prompt", "first_frame", "last_frame",
                                                              "first_clip", "driving_audio", "prompt_extend",
                                                              "watermark", "seed"}), "i2v_payload"),
        # The app alibaba/wan-2-7-videoedit (api/alibaba/wan-2-7-videoedit/input_schema.json): `video`, up to 4
        # `reference_images`; a null ratio or duration keeps the clip's (0 fails its schema, so it is left out).
        Route(EDIT_MODEL_ID, "alibaba/wan-2-7-videoedit", frozenset({"negative_prompt", "prompt_extend", "watermark",
                                                                    "seed"}), "edit_payload"),
    )

    def __init__(self, settings: Any):
        super().__init__(settings)
        own: InferenceShSettings = self.own  # type: ignore[assignment]
        self._open(own.base_url or BASE_URL,
                   {"Authorization": f"Bearer {self.key}"})
        self._schema_fields: dict[str, set[str]] = {}  # by app: its live input schema's fields (empty: unreadable)

    def refusals(self, request: R2VRequest, route: Route) -> list[InputError]:
        problems = super().refusals(request, route)
        if len(getattr(request, "voices", ())) == 1 and not problems:
            # The app attaches its one voice to the first reference video, else to the first image.
            target = "Video 1" if request.reference_videos else "Image 1"
            label = request.voices[0].label
            if " ".join(label.split()).title() != target:
                problems.append(InputError(
                    f"inference.sh gives its one voice to {target}, not to {label}", field="voices",
                    fix=f"key the voice to \"{target}\" (reorder the references so that character comes first), "
                        "or use provider=dashscope"))
        return problems

    def r2v_payload(self, request: R2VRequest, intake: Intake, urls: dict[str, str], route: Route) -> dict[str, Any]:
        def name(field: str) -> str:
            return self._name(field, route.host_model)

        inputs: dict[str, Any] = {"prompt": request.prompt}
        if request.negative_prompt:
            inputs["negative_prompt"] = request.negative_prompt
        images = [urls[r.label] for r in intake.references if r.role == "reference_image"]
        videos = [urls[r.label] for r in intake.references if r.role == "reference_video"]
        if images:
            inputs[name("reference_images")] = images
        if videos:
            inputs[name("reference_videos")] = videos
        first = [r for r in intake.references if r.role == "first_frame"]
        if first:
            inputs[name("first_frame")] = urls[first[0].label]
        voices = [r.voice for r in intake.references if r.voice is not None]
        if voices:
            inputs[name("reference_voice")] = urls[voices[0].label]
        inputs["resolution"] = request.resolution.upper()
        inputs[name("ratio")] = request.aspect_ratio
        inputs["duration"] = request.duration
        inputs["watermark"] = request.watermark
        if request.prompt_extend is not None:
            inputs["prompt_extend"] = request.prompt_extend
        if request.seed is not None:
            inputs["seed"] = request.seed
        return {"app": route.host_model, "input": inputs}

    def i2v_payload(self, request: I2VRequest, intake: Intake, urls: dict[str, str], route: Route) -> dict[str, Any]:
        inputs: dict[str, Any] = {"prompt": request.prompt}
        for ref in intake.references:
            inputs[ref.role] = urls[ref.label]
        inputs.update(resolution=request.resolution.upper(), duration=request.duration, watermark=request.watermark)
        inputs.update(optional_inputs(request))
        return {"app": route.host_model, "input": inputs}

    def edit_payload(self, request: EditRequest, intake: Intake, urls: dict[str, str], route: Route) -> dict[str, Any]:
        inputs: dict[str, Any] = {"prompt": request.prompt}
        inputs["video"] = urls[intake.references[0].label]
        images = [urls[r.label] for r in intake.references if r.role == "reference_image"]
        if images:
            inputs["reference_images"] = images
        inputs.update(resolution=request.resolution.upper(), audio_setting=request.audio_setting,
                      watermark=request.watermark)
        if request.aspect_ratio:
            inputs["ratio"] = request.aspect_ratio
        if request.duration:
            inputs["duration"] = request.duration
        inputs.update(optional_inputs(request))
        return {"app": route.host_model, "input": inputs}

    def t2v_payload(self, request: T2VRequest, intake: Intake, urls: dict[str, str], route: Route) -> dict[str, Any]:
        inputs: dict[str, Any] = {"prompt": request.prompt}
        inputs.update(resolution=request.resolution.upper(), duration=request.duration, watermark=request.watermark)
        inputs.update(optional_inputs(request))
        return {"app": route.host_model, "input": inputs}

    def _name(self, field: str, app: str) -> str:
        """The app's own name for a field: from its live schema when read, else the source's name."""
        candidates = FIELD_NAMES.get(field, (field,))
        known = self._schema_fields.get(app)
        if known:
            for candidate in candidates:
                if candidate in known:
                    return candidate
        return candidates[0]

    async def check_access(self) -> str:
        body = await self._call("GET", f"/apps/{APP}", attempts=1)  # the app and its schema: free, needs the key
        fields = _input_properties(body)
        return f"the key works; the app {APP} answers" + (f" ({len(fields)} input fields)" if fields else "")

    async def _read_schema(self, app: str) -> None:
        if app in self._schema_fields:
            return
        try:
            body = await self._call("GET", f"/apps/{app}", attempts=1)
            self._schema_fields[app] = _input_properties(body) or set()
        except ProviderError:
            self._schema_fields[app] = set()  # fall back to the known names

    async def upload(self, ref: Reference, route: Route, *, scope: str = "") -> str:
        opened = ref.opened
        assert opened is not None
        content_type = mimetypes.guess_type(f"x{opened.suffix}")[0] or "application/octet-stream"
        # As the SDK makes them (https://inference.sh/docs/api-rest-files): no `public: false`, since the app hands each file's
        # URI to DashScope, which must be able to fetch it.
        body = await self._call("POST", "/files", json={"files": [{
            "uri": "", "filename": f"ref{opened.suffix}", "content_type": content_type, "size": opened.size}]})
        files = body if isinstance(body, list) else (body.get("files") or []) if isinstance(body, dict) else []
        if not files or not isinstance(files[0], dict) or not files[0].get("upload_url") or not files[0].get("uri"):
            raise UploadRetryable(f"inference.sh gave no upload address for {ref.label}",
                                  fix="try again; or pass the reference as an https URL")
        await self._put(str(files[0]["upload_url"]), ref, content_type)  # no API key goes to storage
        return str(files[0]["uri"])

    async def submit(self, payload: dict[str, Any], route: Route) -> HostJob:
        app = route.host_model
        await self._read_schema(app)
        if self._schema_fields[app]:  # names may differ from the dry run's guess: map again now the schema is known
            payload = {**payload, "input": {self._rename(k, app): v for k, v in payload["input"].items()}}
        body = await self._call("POST", "/apps/run", json=payload, creates=True)
        task = body.get("task") if isinstance(body, dict) and isinstance(body.get("task"), dict) else body
        if not isinstance(task, dict) or not self.task_id_pattern.match(str(task.get("id") or "")):
            raise SubmitUnknown("inference.sh accepted the run but returned no usable task id",
                                fix="the job may exist at inference.sh; check your inference.sh dashboard")
        return self._job(task)

    def _rename(self, key: str, app: str) -> str:
        for field, names in FIELD_NAMES.items():
            if key in names:
                return self._name(field, app)
        return key

    async def poll(self, job: JobRef) -> HostJob:
        return self._job(await self._call("GET", f"/tasks/{self._checked(job.provider_task_id)}"))

    async def cancel(self, job: JobRef) -> HostJob | None:
        await self._call("POST", f"/tasks/{self._checked(job.provider_task_id)}/cancel")
        return await self.poll(job)

    def _job(self, task: dict[str, Any]) -> HostJob:
        raw = task.get("status")
        number = _STR_STATUS.get(raw.lower(), 0) if isinstance(raw, str) else int(raw or 0)
        status = _INT_STATUS.get(number, "running")
        job = HostJob(str(task.get("id")), status, stage=f"inference.sh {_INT_NAME.get(number, number)}")  # type: ignore[arg-type]
        output = task.get("output") or {}
        video = output.get("video") if isinstance(output, dict) else None
        if isinstance(video, dict):
            video = video.get("uri") or video.get("url")
        if status == "succeeded":
            if video:
                job.video_url = str(video)
            else:  # completed is success only with the video in hand (https://inference.sh/docs/api/rest/tasks)
                job.status, job.stage = "running", "inference.sh completed; waiting for the output"
        elif status == "failed":
            reason = task.get("error") or ("refused at admission: no balance or payment method" if number == 13
                                           else "no reason given")
            job.error = TaskError(code=Billing.code if number == 13 else "generation_failed",
                                  message=f"inference.sh reported the task {_INT_NAME.get(number)}. inference.sh said: "
                                          f"{clean_remote_text(str(reason), 300)}",
                                  hint="add credit on inference.sh" if number == 13 else "adjust the request and try again")
        return job

    async def _call(self, method: str, path: str, *, creates: bool = False, **kwargs: Any) -> Any:
        body = await super()._call(method, path, creates=creates, **kwargs)
        if isinstance(body, dict) and "data" in body and ("success" in body or "status" in body):
            if body.get("success") is False:
                raise HostRefused(f"inference.sh refused the request. inference.sh said: "
                                  f"{clean_remote_text(str(body.get('error') or body.get('message')), 300)}",
                                  fix="check the request")
            return body["data"]  # the v1 envelope
        return body


def _input_properties(body: Any) -> set[str] | None:
    """The property names of the app's input schema, wherever the app record keeps it."""
    if isinstance(body, dict):
        props = body.get("properties")
        if isinstance(props, dict) and "prompt" in props:
            return set(props)
        for key in ("input_schema", "version", "data", "app", "schema"):
            if key in body and (found := _input_properties(body[key])) is not None:
                return found
    return None
