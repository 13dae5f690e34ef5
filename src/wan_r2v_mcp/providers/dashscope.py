"""Alibaba Model Studio (DashScope): the model's own API, with the 2.7 "media" protocol.

Facts from Alibaba Model Studio's wan2.7-r2v API reference and its task and file pages: async create with `X-DashScope-Async: enable`, poll `GET /tasks/{id}`,
cancel while PENDING, temporary `oss://` uploads for local files (48 h, bound to model and account),
region-bound keys (Singapore and Beijing), result URLs valid for 24 h.
"""

from __future__ import annotations

import hashlib
import mimetypes
import re
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import httpx

from ..errors import (
    HostAnswerMalformed,
    HostRefused,
    HostUnavailable,
    InputError,
    InvalidParameter,
    JobUnknown,
    NotConfigured,
    ProviderError,
    SubmitUnknown,
    UploadFailed,
    UploadRetryable,
)
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
from .base import Capabilities, HostCandidate, HostJob, JobRef, PageTurn, Route, serves
from .dashscope_answers import ERROR_CLASSES, STATUS, list_rows, task_error
from .hosted import HostedProvider
from .uploads import UploadCache

if TYPE_CHECKING:
    from ..references.intake import Intake, Reference
    from .host_settings import DashScopeSettings

REGIONS = {
    "singapore": "https://dashscope-intl.aliyuncs.com/api/v1",
    "beijing": "https://dashscope.aliyuncs.com/api/v1",
}
# Wan 3.0 is served on workspace hosts only, https://{WorkspaceId}.{region}.maas.aliyuncs.com/api/v1 (Alibaba's
# wan3-video-generation-api-reference page, "Endpoints"); the region codes of the regions above.
WORKSPACE_REGIONS = {"singapore": "ap-southeast-1", "beijing": "cn-beijing"}
WORKSPACE_MODELS = frozenset({WAN3_MODEL_ID})
_WORKSPACE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,62}$")  # one DNS label: it is the host name's first part
CREATE_PATH = "/services/aigc/video-generation/video-synthesis"
UPLOAD_TTL_SECONDS = 48 * 3600
RESULT_TTL_SECONDS = 24 * 3600
_TASK_ID = re.compile(r"^[A-Za-z0-9-]{1,80}$")
MAX_LIST_PAGES = 200



class DashScopeProvider(HostedProvider):
    task_id_pattern = _TASK_ID
    result_domains = ("aliyuncs.com",)

    # Its query and list interfaces take 20 calls a second per account (Alibaba's asynchronous-task pages): this
    # server spends 18 of them, leaving room for the account's other clients.
    capabilities = Capabilities(name="dashscope", title="DashScope", sweep_seconds=4.0,
                                max_polls_per_second=18.0)
    routes = serves(
        Route(MODEL_ID, MODEL_ID, frozenset({"negative_prompt", "first_frame", "voices", "prompt_extend", "watermark",
                                             "seed"}), "r2v_payload", media_max=5),
        # wan2.7-t2v on the same endpoint (platform.qianwenai.com/docs/api-reference/video-generation/
        # wan27-text-to-video/create-task): its audio is `input.audio_url`, not a media item.
        Route(T2V_MODEL_ID, T2V_MODEL_ID, frozenset({"negative_prompt", "audio", "prompt_extend", "watermark", "seed"}),
              "t2v_payload"),
        # wan2.7-i2v (…/wan27-image-to-video/create-task): media typed first_frame, last_frame, driving_audio,
        # first_clip; no ratio (the output keeps the input's shape).
        Route(I2V_MODEL_ID, I2V_MODEL_ID, frozenset({"negative_prompt", "first_frame", "last_frame", "first_clip",
                                                     "driving_audio", "prompt_extend", "watermark", "seed"}),
              "i2v_payload"),
        # wan2.7-videoedit (Alibaba's video-editing guide): one `video` and 0-4 `reference_image` media items;
        # duration 0 keeps the whole clip; no ratio keeps the clip's.
        Route(EDIT_MODEL_ID, EDIT_MODEL_ID, frozenset({"negative_prompt", "prompt_extend", "watermark", "seed"}),
              "edit_payload"),
        # wan3.0-video (platform.qianwenai.com/docs/api-reference/video-generation/wan30-video/create-task): media typed
        # reference_image, reference_video, reference_audio; no negative prompt. Its USD price is not published:
        # Beijing lists CNY 0.6 / 1.2 per second at 720P / 1080P (third-party tables), about $0.103 / $0.206.
        Route(WAN3_MODEL_ID, WAN3_MODEL_ID, frozenset({"voices", "prompt_extend", "watermark", "seed"}),
              "wan3_payload", duration_max=Limits.WAN3_DURATION_MAX, duration_max_with_video=Limits.WAN3_DURATION_MAX,
              max_voices=Limits.WAN3_AUDIO_MAX,
              prices={"720p": 0.103, "1080p": 0.206},
              price_source="estimate: Beijing's CNY list price from third-party tables, converted; Alibaba "
                           "publishes no USD price for wan3.0-video"),
    )

    def __init__(self, settings: Any):
        super().__init__(settings)
        own: DashScopeSettings = self.own  # type: ignore[assignment]
        region = (own.region or "singapore").lower()
        if own.base_url:
            base_url = own.base_url
        elif region in REGIONS:
            base_url = REGIONS[region]
        else:
            raise NotConfigured(f"DASHSCOPE_REGION={region!r} is not a region that serves Wan 2.7",
                                fix="set DASHSCOPE_REGION to singapore or beijing, or DASHSCOPE_BASE_URL to the API base")
        self.region = region
        # Wan 3.0's host: the configured base when one is set (a proxy, or the legacy host Alibaba's own samples
        # use), else the workspace's host in this region.
        workspace = own.workspace_id
        self._workspace_url = base_url.rstrip("/") if own.base_url else (
            f"https://{workspace}.{WORKSPACE_REGIONS[region]}.maas.aliyuncs.com/api/v1"
            if workspace and _WORKSPACE_ID.match(workspace) and region in WORKSPACE_REGIONS else None)
        key = self.key
        auth = {"Authorization": f"Bearer {key}"}
        if workspace:
            auth["X-DashScope-WorkSpace"] = workspace
        self._open(base_url, auth)
        # oss:// uploads are bound to the account, model and region (alibabacloud.com/help/en/model-studio/get-temporary-file-url): never share them across
        # keys or endpoints. The key itself is not stored, only a digest of it.
        self._upload_scope = "dashscope:" + hashlib.sha256(f"{key}\n{base_url}\n{region}".encode()).hexdigest()[:24]
        self._uploads = UploadCache(settings.data.uploads)

    def refusals(self, request: Any, route: Route) -> list[InputError]:
        problems = super().refusals(request, route)
        if route.model in WORKSPACE_MODELS and self._workspace_url is None:
            problems.append(InputError(
                f"DashScope serves {route.model} only on a workspace's own host", field="model",
                limit="DASHSCOPE_WORKSPACE_ID set to a workspace id (letters, digits and -), in singapore or beijing",
                fix="set DASHSCOPE_WORKSPACE_ID to your Model Studio workspace's id, or use provider=fal"))
        return problems

    def _api(self, model: str | None) -> str:
        """Where a model's calls go: the configured API base, or for Wan 3.0 the workspace host (absolute)."""
        if model in WORKSPACE_MODELS and self._workspace_url is not None and self._workspace_url != self.base_url:
            return self._workspace_url
        return ""

    # -- the payload

    def r2v_payload(self, request: R2VRequest, intake: Intake, urls: dict[str, str], route: Route) -> dict[str, Any]:
        by_role = {role: [r for r in intake.references if r.role == role]
                   for role in ("reference_image", "reference_video", "first_frame")}
        media = []
        for ref in by_role["reference_image"] + by_role["reference_video"] + by_role["first_frame"]:
            item: dict[str, Any] = {"type": ref.role, "url": urls[ref.label]}
            if ref.voice is not None:
                item["reference_voice"] = urls[ref.voice.label]
            media.append(item)
        body_input: dict[str, Any] = {"prompt": request.prompt}
        if request.negative_prompt:
            body_input["negative_prompt"] = request.negative_prompt
        body_input["media"] = media
        return {"model": route.host_model, "input": body_input, "parameters": _parameters(request)}

    def wan3_payload(self, request: R2VRequest, intake: Intake, urls: dict[str, str], route: Route) -> dict[str, Any]:
        """Images, then clips, then each voice as a reference audio "Audio k" the prompt names."""
        media = [{"type": r.role, "url": urls[r.label]} for role in ("reference_image", "reference_video")
                 for r in intake.references if r.role == role]
        media += [{"type": "reference_audio", "url": urls[r.voice.label]} for r in intake.voiced if r.voice]
        body_input = {"prompt": voiced_prompt(request.prompt, [r.label for r in intake.voiced]), "media": media}
        return {"model": route.host_model, "input": body_input, "parameters": _parameters(request)}

    def i2v_payload(self, request: I2VRequest, intake: Intake, urls: dict[str, str], route: Route) -> dict[str, Any]:
        body_input: dict[str, Any] = {"prompt": request.prompt}
        if request.negative_prompt:
            body_input["negative_prompt"] = request.negative_prompt
        body_input["media"] = [{"type": r.role, "url": urls[r.label]} for r in intake.references]
        parameters = {k: v for k, v in _parameters(request).items() if k != "ratio"}
        return {"model": route.host_model, "input": body_input, "parameters": parameters}

    def edit_payload(self, request: EditRequest, intake: Intake, urls: dict[str, str], route: Route) -> dict[str, Any]:
        body_input: dict[str, Any] = {"prompt": request.prompt}
        if request.negative_prompt:
            body_input["negative_prompt"] = request.negative_prompt
        body_input["media"] = [{"type": r.role, "url": urls[r.label]} for r in intake.references]
        parameters = {k: v for k, v in _parameters(request).items() if v is not None}
        parameters["audio_setting"] = request.audio_setting
        return {"model": route.host_model, "input": body_input, "parameters": parameters}

    def t2v_payload(self, request: T2VRequest, intake: Intake, urls: dict[str, str], route: Route) -> dict[str, Any]:
        body_input: dict[str, Any] = {"prompt": request.prompt}
        if request.negative_prompt:
            body_input["negative_prompt"] = request.negative_prompt
        for ref in intake.references:
            if ref.role == "audio":
                body_input["audio_url"] = urls[ref.label]
        return {"model": route.host_model, "input": body_input, "parameters": _parameters(request)}

    # -- uploads (the temporary-file flow: getPolicy, a form POST to OSS, an oss:// URL)

    async def upload(self, ref: Reference, route: Route, *, scope: str = "") -> str:
        opened = ref.opened
        assert opened is not None
        digest = await anyio.to_thread.run_sync(opened.sha256)
        # An upload is bound to the model its policy was asked for, as to the account and region.
        cache_scope = f"{self._upload_scope}:{route.host_model}:{hashlib.sha256(scope.encode()).hexdigest()[:16]}"
        if (cached := self._uploads.get(cache_scope, digest)) is not None:
            return cached
        policy = await self._call("GET", f"{self._api(route.model)}/uploads",
                                  params={"action": "getPolicy", "model": route.host_model})
        data = policy.get("data") or {}
        try:
            key = f"{data['upload_dir']}/ref-{uuid.uuid4().hex}{opened.suffix}"  # never the user's file name
            fields = {
                "OSSAccessKeyId": data["oss_access_key_id"],
                "Signature": data["signature"],
                "policy": data["policy"],
                "key": key,
                "x-oss-object-acl": data["x_oss_object_acl"],
                "x-oss-forbid-overwrite": data["x_oss_forbid_overwrite"],
                "success_action_status": "200",
                "x-oss-content-type": mimetypes.guess_type(f"x{opened.suffix}")[0] or "application/octet-stream",
            }
            upload_host = str(data["upload_host"])
        except (KeyError, TypeError) as exc:
            raise UploadRetryable(f"DashScope's upload policy lacked {exc.args[0] if exc.args else 'a field'}",
                                  fix="try again; if it persists, pass the reference as an https URL") from None
        try:
            with anyio.fail_after(self.settings.upload_deadline_seconds):  # the checked bytes, streamed from the open file
                response = await self._http.post(upload_host, data=fields, files={
                    "file": (Path(key).name, opened.reader(), fields["x-oss-content-type"])})
        except (httpx.TransportError, TimeoutError) as exc:
            raise UploadRetryable(f"uploading {ref.label} failed: {type(exc).__name__}",
                                  fix="check the network and try again") from None
        if response.status_code != 200:
            cls = UploadRetryable if response.status_code >= 500 else UploadFailed
            raise cls(f"uploading {ref.label} was refused with HTTP {response.status_code}",
                      host_message=response.text[:300],
                      fix="try again; if it persists, pass the reference as an https URL")
        address = f"oss://{key}"
        self._uploads.put(cache_scope, digest, address, UPLOAD_TTL_SECONDS)
        return address

    # -- the job

    async def submit(self, payload: dict[str, Any], route: Route) -> HostJob:
        headers = {"X-DashScope-Async": "enable"}
        media = payload["input"].get("media") or []
        addresses = [v for item in media for v in item.values()] + [payload["input"].get("audio_url")]
        if any(str(v).startswith("oss://") for v in addresses):
            headers["X-DashScope-OssResourceResolve"] = "enable"
        try:
            body = await self._call("POST", self._api(route.model) + CREATE_PATH, json=payload, headers=headers,
                                    creates=True)
        except InvalidParameter as exc:
            if len(media) > 5 and any(m.get("type") == "first_frame" for m in media):
                # The create schema caps `media` at 5 items while the prose allows 5 references plus a first frame
                # (alibabacloud.com/help/en/model-studio/get-temporary-file-url): say which it is.
                raise InvalidParameter(
                    f"DashScope refused {len(media)} media items: its create schema takes at most 5, counting the "
                    "first frame with the references", host_message=exc.message,
                    fix="give at most 4 references with a first_frame, or drop the first_frame") from None
            raise
        output = body.get("output") if isinstance(body, dict) else None
        task_id = str((output or {}).get("task_id") or "")
        if not _TASK_ID.match(task_id):
            raise SubmitUnknown("DashScope accepted the request but returned no usable task id",
                                fix="the job may exist at DashScope; it is looked for, never sent again")
        return self._job(task_id, output or {}, body.get("usage"))

    async def poll(self, job: JobRef) -> HostJob:
        task_id = self._checked(job.provider_task_id)
        body = await self._call("GET", f"{self._api(job.model)}/tasks/{task_id}")
        return self._job(task_id, body.get("output") or {}, body.get("usage"))

    async def cancel(self, job: JobRef) -> HostJob | None:
        try:
            await self._call("POST", f"{self._api(job.model)}/tasks/{self._checked(job.provider_task_id)}/cancel")
        except ProviderError as exc:
            if exc.retryable:
                raise
        state = await self.poll(job)
        if state.status in ("queued", "running"):
            state.stage = f"{state.stage}; DashScope cancels only tasks still queued, so this one will run to its end"
        return state

    async def check_access(self) -> str:
        # The temporary-upload policy: free, needs the key, and shows whether temporary storage serves this region
        # (Alibaba's "get temporary file URL" page, alibabacloud.com/help/en/model-studio/get-temporary-file-url, says
        # Beijing only in one copy and nothing of regions in another).
        body = await self._call("GET", "/uploads", params={"action": "getPolicy", "model": MODEL_ID}, attempts=1)  # any model's will do
        data = body.get("data") if isinstance(body, dict) else None
        if not isinstance(data, dict) or not data.get("upload_host"):
            raise HostAnswerMalformed(
                f"DashScope accepted the key in {self.region} but gave no temporary-storage policy",
                fix="local files cannot be uploaded there: pass references as https URLs, or try "
                    "DASHSCOPE_REGION=beijing if the key is from Beijing")
        return f"the key works in {self.region}; temporary storage for local files answers ({data['upload_host']})"

    async def find_submitted(self, *, since: float, until: float, model: str | None = None,
                             before_page: PageTurn | None = None) -> list[HostCandidate] | None:
        # The list takes UTC+8 times and a range of at most 24 hours (DashScope's task list reference, GET /api/v1/tasks): query inside it.
        # The sweep (no model) reads the workspace host's list too, where Wan 3.0's jobs are.
        apis = {self._api(model)} if model else {"", *(self._api(m) for m in WORKSPACE_MODELS)}
        found: list[HostCandidate] = []
        for api in sorted(apis):
            found.extend(await self._list(api, since, until, model, before_page))
        return found

    async def _list(self, api: str, since: float, until: float, model: str | None,
                    before_page: PageTurn | None) -> list[HostCandidate]:
        fmt = "%Y%m%d%H%M%S"
        until = min(until, since + 23.5 * 3600)
        found: list[HostCandidate] = []
        for page in range(1, MAX_LIST_PAGES + 1):
            params = {"start_time": time.strftime(fmt, time.gmtime(since + 8 * 3600)),
                      "end_time": time.strftime(fmt, time.gmtime(until + 8 * 3600)),
                      "page_no": page, "page_size": 100, **({"model_name": model} if model else {})}
            if before_page is not None:
                await before_page()
            rows = list_rows(await self._call("GET", f"{api}/tasks", params=params))
            for row in rows:
                task_id = str(row.get("task_id") or "")
                if not _TASK_ID.match(task_id):
                    continue
                created = row.get("gmt_create")
                # List rows say `status`; the completion event says `task_status` (Alibaba Model Studio, "Manage
                # asynchronous tasks"; the DashScope Java SDK's test data): read both.
                raw = row.get("status") or row.get("task_status") or ""
                found.append(HostCandidate(task_id, created / 1000 if isinstance(created, (int, float)) else None,
                                           row.get("model_name"), None,  # the prompt shows only on success
                                           STATUS.get(str(raw).upper())))  # type: ignore[arg-type]
            if len(rows) < 100:
                return found
        # A partial list proves nothing: never conclude from it that a job was not made.
        raise HostAnswerMalformed(f"DashScope's job list for that window is longer than {MAX_LIST_PAGES * 100} jobs",
                                  fix="the server looks again later")

    # -- talking to the API

    def _job(self, task_id: str, output: dict[str, Any], usage: dict[str, Any] | None) -> HostJob:
        raw = str(output.get("task_status") or "UNKNOWN").upper()
        status = STATUS.get(raw, "running")
        job = HostJob(task_id, status, stage=f"DashScope {raw}")  # type: ignore[arg-type]
        if isinstance(output.get("orig_prompt"), str):
            job.prompt = output["orig_prompt"]
        if status == "succeeded":
            job.video_url = output.get("video_url")
            job.video_url_expires_at = time.time() + RESULT_TTL_SECONDS
        if usage:
            seconds = usage.get("duration")
            if seconds is None and ("input_video_duration" in usage or "output_video_duration" in usage):
                seconds = float(usage.get("input_video_duration") or 0) + float(usage.get("output_video_duration") or 0)
            if seconds is not None:
                job.billable_seconds = float(seconds)
        if raw == "UNKNOWN":
            job.error = TaskError(code=JobUnknown.code,
                                  message="DashScope no longer knows this task: it expired (after 24 h) or belongs to "
                                          "another key or region",
                                  hint="generate again; check DASHSCOPE_API_KEY and DASHSCOPE_REGION if this is new")
        elif status == "failed":
            code = str(output.get("code") or "GenerationFailed")
            job.error = task_error(code, output.get("message"), self.region)
        return job

    def _error(self, response: httpx.Response) -> ProviderError:
        try:
            body = response.json()
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        code = str(body.get("code") or f"HTTP{response.status_code}")
        err = task_error(code, body.get("message"), self.region, response.status_code)
        cls = ERROR_CLASSES.get(err.code, HostUnavailable if response.status_code >= 500 else HostRefused)
        return cls(err.message, fix=err.hint)


def _parameters(request: R2VRequest | T2VRequest | I2VRequest | EditRequest) -> dict[str, Any]:
    """The parameters every Wan 2.7 model takes alike on DashScope."""
    parameters: dict[str, Any] = {
        "resolution": request.resolution.upper(),
        "ratio": getattr(request, "aspect_ratio", None),
        "duration": request.duration,
        "watermark": request.watermark,
    }
    if request.prompt_extend is not None:
        parameters["prompt_extend"] = request.prompt_extend
    if request.seed is not None:
        parameters["seed"] = request.seed
    return parameters
