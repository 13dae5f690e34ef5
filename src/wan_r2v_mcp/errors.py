"""Our error hierarchy: each error knows what is wrong, with which input, the limit and the fix.

Tools turn any `R2VError` into one tool error text (`tool_message`); anything else is a bug and the
SDK hides its text from the client.
"""

from __future__ import annotations

import re


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
        text = " ".join(parts) + "."
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
    code = "invalid_reference"


class NotFoundError(R2VError):
    code = "not_found"


class ProviderError(R2VError):
    """A host refused or failed. `retryable` says whether asking again later may succeed."""

    code = "provider_error"

    def __init__(self, message: str, *, code: str = "provider_error", fix: str = "", retryable: bool = False,
                 host_message: str | None = None):
        super().__init__(message, fix=fix)
        self.code = code
        self.retryable = retryable
        self.host_message = clean_remote_text(host_message) if host_message else None


class BudgetError(InputError):
    code = "over_budget"


# ---------------------------------------------------------------- secrets and remote text

_SECRET_PATTERNS = [
    (re.compile(r"(?i)\b(bearer|key|token)(\s+)[A-Za-z0-9._\-:]{12,}"), r"\1\2***"),
    (re.compile(r"\b(sk-|r8_|inf_)[A-Za-z0-9]{8,}"), r"\1***"),
]
_known_secrets: set[str] = set()


def register_secret(value: str | None) -> None:
    """Remember a configured secret so `redact` removes it wherever it shows up."""
    if value and len(value) >= 6:
        _known_secrets.add(value)


def redact(text: str) -> str:
    for secret in _known_secrets:
        text = text.replace(secret, "***")
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


_UNSAFE_CHARS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")


def clean_remote_text(text: str, limit: int = 500) -> str:
    """Host-supplied text goes back as data: control, bidi and zero-width characters out, and short."""
    text = redact(_UNSAFE_CHARS.sub("", str(text))).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"
