"""Our error hierarchy: one class per meaning, each knowing what is wrong, with which input, the limit and the fix.

The wire code is the class's `code`; callers catch by class, never by comparing code strings. Tools turn
any `R2VError` into one tool error text (`tool_message`); anything else is a bug and the SDK hides its text.
"""

from __future__ import annotations

import re
from collections import OrderedDict


class R2VError(Exception):
    """Base of every error the agent is meant to read and act on."""

    code = "error"

    def __init__(self, message: str, *, fix: str = "", field: str | None = None, limit: str | None = None):
        super().__init__(message)
        self.message = message
        self.fix = fix
        self.field = field
        self.limit = limit

    def tool_message(self) -> str:
        parts = [f"[{self.code}]"]
        if self.field:
            parts.append(f"{self.field}:")
        parts.append(self.message.rstrip("."))
        text = " ".join(parts)
        text += "" if text.endswith(("?", "!")) else "."
        if self.limit:
            text += f" Limit: {self.limit}."
        if self.fix:
            text += f" Fix: {self.fix.rstrip('.')}."
        return redact(text)


class InputError(R2VError):
    """An argument is invalid; nothing was recorded, uploaded or paid."""

    code = "invalid_input"


class InputErrors(InputError):
    """Several arguments are invalid at once: all are reported, so one round trip fixes them all."""

    def __init__(self, errors: list[InputError]):
        super().__init__("; ".join(e.message for e in errors))
        self.errors = errors

    def tool_message(self) -> str:
        if len(self.errors) == 1:
            return self.errors[0].tool_message()
        lines = [f"[{self.code}] {len(self.errors)} problems with the arguments:"]
        lines += [f"- {e.tool_message().removeprefix(f'[{e.code}] ')}" for e in self.errors]
        return redact("\n".join(lines))


class ReferenceError(InputError):  # noqa: A001 - our own meaning, scoped to this package
    """A reference file or URL is unusable."""

    code = "invalid_reference"


class BudgetError(InputError):
    """The request's estimated cost is over a configured cap."""

    code = "over_budget"


class ProviderUnavailable(InputError):
    """The provider is unknown here, or its key is not set."""

    code = "provider_unavailable"


class NotFoundError(R2VError):
    """No task of this caller has that id."""

    code = "not_found"


# ---------------------------------------------------------------- what hosts do

class ProviderError(R2VError):
    """A host refused or failed. `retryable`: asking again later may succeed."""

    code = "provider_error"
    retryable = False

    def __init__(self, message: str, *, fix: str = "", host_message: str | None = None, limit: str | None = None):
        super().__init__(message, fix=fix, limit=limit)
        self.host_message = clean_remote_text(host_message) if host_message else None


class NotConfigured(ProviderError):
    """The host's settings cannot work (an unknown region, say)."""

    code = "not_configured"


class AuthFailed(ProviderError):
    """The host refused the API key."""

    code = "auth_failed"


class AccessDenied(ProviderError):
    """The key is valid but may not use this model or endpoint."""

    code = "access_denied"


class Billing(ProviderError):
    """The host account needs credit or a payment method."""

    code = "billing"


class Throttled(ProviderError):
    """The host asked us to slow down (429)."""

    code = "rate_limited"
    retryable = True


class HostUnavailable(ProviderError):
    """The host answered with a server error (5xx)."""

    code = "host_unavailable"
    retryable = True


class HostUnreachable(ProviderError):
    """No answer came from the host: refused, reset or timed out."""

    code = "host_unreachable"
    retryable = True


class HostAnswerMalformed(ProviderError):
    """The host's answer was not what its API documents (not JSON, fields missing)."""

    code = "host_error"
    retryable = True


class HostRefused(ProviderError):
    """The host refused the request for a reason it names (other 4xx)."""

    code = "host_error"


class InvalidParameter(ProviderError):
    """The host rejected an input."""

    code = "host_invalid_parameter"


class Moderation(ProviderError):
    """The host's content check flagged the prompt or a reference."""

    code = "content_moderation"


class ModelUnavailable(ProviderError):
    """The host does not serve Wan 2.7 R2V here."""

    code = "model_unavailable"


class JobUnknown(ProviderError):
    """The host does not know the job (expired, or another key's)."""

    code = "task_unknown"


class PollFailed(ProviderError):
    """Asking the host how a job is doing failed, past retrying."""

    code = "poll_failed"


class JobIdMalformed(PollFailed):
    """The stored host id is not one this host makes."""


class SubmitUnknown(ProviderError):
    """The create was sent, but whether the host made the job is not known: it is looked for, never resent."""

    code = "submit_unknown"


class UploadFailed(ProviderError):
    """A reference could not be put in the host's storage."""

    code = "upload_failed"


class UploadRetryable(UploadFailed):
    """A reference upload failed in a way that may pass."""

    retryable = True


class ResultExpired(ProviderError):
    """The host no longer serves the finished video (its URL expired or is refused)."""

    code = "result_expired"


class ResultRejected(ProviderError):
    """The result URL is not on a host this provider serves results from."""

    code = "result_url_rejected"


class ResultInvalid(ProviderError):
    """What was downloaded is not a video (HTML, a cut-off body, more bytes than any the model makes): fetching it
    again may pass. A readable video that differs from the request is never this: it is kept."""

    code = "result_invalid"
    retryable = True


class DownloadInterrupted(ProviderError):
    """Fetching the result failed in a way that may pass (5xx, reset, truncation, timeout)."""

    code = "download_failed"
    retryable = True


class SubmitFailed(ProviderError):
    """Sending the job to the host failed, and the host's answer shows no job was made."""

    code = "submit_failed"


class GenerationFailed(ProviderError):
    """The host ran the job and it failed."""

    code = "generation_failed"


class PreviewFailed(GenerationFailed):
    """The offline preview could not render the request."""

    code = "preview_failed"


# ---------------------------------------------------------------- how a task can end without reaching a host

class Canceled(R2VError):
    """The caller canceled the work (or the shot a sequence was waiting on)."""

    code = "canceled"


class Interrupted(R2VError):
    """The server stopped before the task's create was sent: nothing was sent or paid."""

    code = "interrupted"


class FollowingFailed(R2VError):
    """Following a task or sequence kept failing with an unexpected error; it was stopped rather than retried forever."""

    code = "following_failed"


class NotCreated(R2VError):
    """The host's own job list proves that a create whose answer was lost made no job."""

    code = "not_created"


class JoinFailed(R2VError):
    """Joining videos into one did not give a file whose length is the sum of its parts: nothing was saved."""

    code = "join_failed"


class LedgerUnavailable(R2VError):
    """The task ledger could not be opened when the server started: no task can be made or read until it can."""

    code = "ledger_unavailable"


# ---------------------------------------------------------------- secrets and remote text

_SECRET_PATTERNS = [
    (re.compile(r"(?i)\b(bearer|key|token)(\s+)[A-Za-z0-9._\-:]{12,}"), r"\1\2***"),
    (re.compile(r"\b(sk-|r8_|inf_)[A-Za-z0-9]{8,}"), r"\1***"),
]
_operator_secrets: set[str] = set()  # the server's own keys and tokens: a fixed few
_caller_secrets: OrderedDict[str, None] = OrderedDict()  # keys callers brought, the most recent few thousand
CALLER_SECRETS_KEPT = 2000
# Only a value of a key's shape is ever replaced: long enough, one run of key characters, with a digit, so a
# caller who sends "not_found" or "invalid_input" as a key cannot rewrite the words of anyone's errors.
_KEY_SHAPE = re.compile(r"[A-Za-z0-9._\-:+/=]{16,4096}")


def looks_like_a_key(value: str) -> bool:
    return bool(_KEY_SHAPE.fullmatch(value)) and any(c.isdigit() for c in value)


def register_secret(value: str | None, *, from_caller: bool = False) -> None:
    """Remember a secret so `redact` removes it wherever it shows up: the operator's for the server's life, a caller's
    among the most recent `CALLER_SECRETS_KEPT` (a key shown after that is still caught by the key patterns)."""
    if not value or not looks_like_a_key(value):
        return
    if not from_caller:
        _operator_secrets.add(value)
        return
    _caller_secrets[value] = None
    _caller_secrets.move_to_end(value)
    while len(_caller_secrets) > CALLER_SECRETS_KEPT:
        _caller_secrets.popitem(last=False)


def redact(text: str) -> str:
    if _operator_secrets or _caller_secrets:
        for secret in (*_operator_secrets, *_caller_secrets):
            if secret in text:
                text = text.replace(secret, "***")
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


_UNSAFE_CHARS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")


def clean_remote_text(text: str, limit: int = 500) -> str:
    """Host-supplied text goes back as data: control, bidi and zero-width characters out, and short."""
    text = redact(_UNSAFE_CHARS.sub("", str(text))).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"
