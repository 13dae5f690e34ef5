"""What every remote host's provider shares: one HTTP client, error mapping, id checks, result downloads."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote, urlparse

import httpx

from ..errors import ProviderError, clean_remote_text
from . import http
from .base import HostJob, ProgressFn, Provider


class HostedProvider(Provider):
    task_id_pattern: ClassVar[re.Pattern[str]]
    result_domains: ClassVar[tuple[str, ...]]  # where this host serves finished videos from

    def _open(self, base_url: str, headers: dict[str, str]) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = http.client(self.base_url, headers)
        # The configured API host is trusted for results too: regional proxies and the test emulators.
        self.result_hosts = (*self.result_domains, urlparse(self.base_url).hostname or "")

    async def aclose(self) -> None:
        await self._http.aclose()

    async def download(self, job: HostJob, dest: Path, progress: ProgressFn | None = None) -> None:
        if not job.video_url:
            raise ProviderError(f"{self.capabilities.title} reported success without a video", code="download_failed",
                                fix="ask get_task again; if it persists, generate again")
        await http.download(job.video_url, dest, allowed_hosts=self.result_hosts, progress=progress)

    async def _call(self, method: str, url: str, *, creates: bool = False, **kwargs: Any) -> Any:
        return await http.call_json(self._http, method, url, host=self.capabilities.title, error_of=self._error,
                                    creates=creates, **kwargs)

    def _checked(self, task_id: str | None) -> str:
        """A stored host id, validated and encoded before it goes into a URL path (reliability.md B2)."""
        if not task_id or not self.task_id_pattern.match(task_id):
            raise ProviderError(f"the stored {self.capabilities.title} task id is malformed", code="poll_failed",
                                fix="generate again")
        return quote(task_id, safe="")

    def _error(self, response: httpx.Response) -> ProviderError:
        """An HTTP error as one of our codes, with the host's words labelled as the host's."""
        host, status = self.capabilities.title, response.status_code
        said = f"{host} said: {clean_remote_text(http.problem_text(response), 300)}"
        if status in (401, 403):
            return ProviderError(f"{host} refused the credentials. {said}", code="auth_failed",
                                 fix=f"check {self.capabilities.key_env}")
        if status == 402:
            return ProviderError(f"{host} needs billing set up. {said}", code="billing",
                                 fix=f"add credit or a payment method at {host}, or use provider=\"preview\"")
        if status == 429:
            return ProviderError(f"{host} is throttling requests. {said}", code="rate_limited", retryable=True,
                                 fix="wait a minute and try again")
        if status in (400, 412, 422):
            return ProviderError(f"{host} rejected an input. {said}", code="host_invalid_parameter",
                                 fix="fix what the host names; list_references checks the files and labels")
        if status == 404:
            return ProviderError(f"{host} does not know this job. {said}", code="not_found", fix="generate again")
        return ProviderError(f"{host} answered HTTP {status}. {said}",
                             code="host_unavailable" if status >= 500 else "host_error", retryable=status >= 500,
                             fix="try again later")
