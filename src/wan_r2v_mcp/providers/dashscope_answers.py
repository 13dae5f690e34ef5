"""DashScope's answers read in our words: its job statuses, the rows of its job list, and its error codes as our
stable codes with a hint an agent can act on."""

from __future__ import annotations

from typing import Any

from ..errors import (
    AccessDenied,
    AuthFailed,
    Billing,
    GenerationFailed,
    HostAnswerMalformed,
    HostUnavailable,
    InvalidParameter,
    ModelUnavailable,
    Moderation,
    ProviderError,
    Throttled,
)
from ..schema import TaskError

STATUS = {
    "PENDING": "queued",
    "SUSPENDED": "queued",
    "RUNNING": "running",
    "SUCCEEDED": "succeeded",
    "FAILED": "failed",
    "CANCELED": "canceled",
    "UNKNOWN": "failed",
}


def list_rows(body: Any) -> list[dict[str, Any]]:
    """The rows of one page of `GET /tasks`; an answer of another shape proves nothing, so it is an error."""
    rows: Any = None
    if isinstance(body, dict):
        output = body.get("output")
        rows = body.get("data") or (output.get("data") if isinstance(output, dict) else None) or []
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise HostAnswerMalformed("DashScope's job list came back in a shape it does not document",
                                  fix="the server follows each job by polling it meanwhile")
    return rows


# Our wire codes (from `task_error`) and the error class of each meaning.
ERROR_CLASSES: dict[str, type[ProviderError]] = {
    "auth_failed": AuthFailed, "access_denied": AccessDenied, "host_invalid_parameter": InvalidParameter,
    "content_moderation": Moderation, "rate_limited": Throttled, "billing": Billing,
    "model_unavailable": ModelUnavailable, "host_unavailable": HostUnavailable, "generation_failed": GenerationFailed,
}


def task_error(code: str, message: Any, region: str, status: int | None = None) -> TaskError:
    """A host error code as a stable code of ours, with a hint an agent can act on."""
    from ..errors import clean_remote_text

    other = "beijing" if region == "singapore" else "singapore"
    host_text = f" DashScope said: {clean_remote_text(str(message), 300)}" if message else ""
    if code == "InvalidApiKey" or status == 401:
        return TaskError(code=AuthFailed.code, message=f"DashScope refused the API key ({code}).{host_text}",
                         hint=f"keys are bound to a region: if this key is from {other.title()}, set "
                              f"DASHSCOPE_REGION={other}; otherwise check DASHSCOPE_API_KEY")
    if code.startswith("AccessDenied") or status == 403:
        return TaskError(code=AccessDenied.code, message=f"DashScope denied access ({code}).{host_text}",
                         hint=f"enable the Wan 2.7 models for this account, or if the key is from {other.title()}, set "
                              f"DASHSCOPE_REGION={other}")
    if code == "InvalidParameter":
        return TaskError(code=InvalidParameter.code, message=f"DashScope rejected a parameter.{host_text}",
                         hint="fix what the host names; list_references checks the files and the prompt's labels")
    if code == "DataInspectionFailed":
        return TaskError(code=Moderation.code, message=f"DashScope's content check flagged the input.{host_text}",
                         hint="change the prompt or the references that may break the content policy")
    if code.startswith("Throttling") or status == 429:
        return TaskError(code=Throttled.code, message=f"DashScope is throttling requests ({code}).{host_text}",
                         hint="wait a minute and try again; the quota is per account and model")
    if code == "Arrearage":
        return TaskError(code=Billing.code, message=f"the Alibaba Cloud account is overdue ({code}).{host_text}",
                         hint="top up the account in the Alibaba Cloud console, or use provider=\"preview\"")
    if code in ("Model.NotExist", "ModelNotFound"):
        return TaskError(code=ModelUnavailable.code, message=f"DashScope does not serve this Wan 2.7 model here ({code}).{host_text}",
                         hint="Wan 2.7 is served in Singapore and Beijing; check DASHSCOPE_REGION / DASHSCOPE_BASE_URL")
    if status is not None and status >= 500:
        return TaskError(code=HostUnavailable.code, message=f"DashScope had an internal error ({code}).{host_text}",
                         hint="try again in a minute")
    return TaskError(code=GenerationFailed.code, message=f"DashScope reported {code}.{host_text}",
                     hint="adjust the request as the host's message says, or try again")
