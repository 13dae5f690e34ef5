"""What every remote host's provider shares: one HTTP client, error mapping, id checks, result downloads."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote, urlparse

import httpx

from ..errors import (
    AuthFailed,
    Billing,
    DownloadInterrupted,
    HostRefused,
    HostUnavailable,
    InvalidParameter,
    JobIdMalformed,
    JobUnknown,
    ProviderError,
    Throttled,
    UploadFailed,
    UploadRetryable,
    clean_remote_text,
)
from . import http
from .base import HostJob, ProgressFn, Provider


class HostedProvider(Provider):
    task_id_pattern: ClassVar[re.Pattern[str]]
    result_domains: ClassVar[tuple[str, ...]]  # where this host serves finished videos from

    def _open(self, base_url: str, auth: dict[str, str], extra_hosts: tuple[str, ...] = ()) -> None:
        """One client for this host: API calls, storage uploads and result downloads all reuse its connections.
        The key is added to API calls only (`_call`), so it never reaches storage or a CDN."""
        self.base_url = base_url.rstrip("/")
        self._auth = auth
        self._http = http.client(self.base_url)
        # The configured API host is trusted for results too: regional proxies and the test emulators.
        self.result_hosts = (*self.result_domains, urlparse(self.base_url).hostname or "", *extra_hosts)

    @property
    def deadline(self) -> float:
        return self.settings.request_deadline_seconds

    async def aclose(self) -> None:
        await self._http.aclose()

    async def download(self, job: HostJob, dest: Path, progress: ProgressFn | None = None) -> None:
        if not job.video_url:
            raise DownloadInterrupted(f"{self.capabilities.title} reported success without a video URL yet",
                                      fix="the server asks the host again on its own")
        await http.download(self._http, job.video_url, dest, allowed_hosts=self.result_hosts,
                            deadline=self.settings.download_deadline_seconds, progress=progress)

    async def _call(self, method: str, url: str, *, creates: bool = False, headers: dict[str, str] | None = None,
                    **kwargs: Any) -> Any:
        return await http.call_json(self._http, method, url, host=self.capabilities.title, error_of=self._error,
                                    creates=creates, deadline=self.deadline, headers={**self._auth, **(headers or {})},
                                    time_scale=self.settings.time_scale, **kwargs)

    async def _put(self, url: str, ref: Any, content_type: str) -> None:
        """PUT a reference's checked bytes to a signed storage URL (no key goes there)."""
        opened = ref.opened
        response = await http.put_bytes(self._http, url, opened.chunks(), size=opened.size, content_type=content_type,
                                        deadline=self.settings.upload_deadline_seconds, what=ref.label)
        if response.status_code >= 300:
            cls = UploadRetryable if response.status_code >= 500 else UploadFailed
            raise cls(f"uploading {ref.label} to {self.capabilities.title} failed with HTTP {response.status_code}",
                      fix="try again; or pass the reference as an https URL")

    def _checked(self, task_id: str | None) -> str:
        """A stored host id, validated and encoded before it goes into a URL path (OWASP: path traversal)."""
        if not task_id or not self.task_id_pattern.match(task_id):
            raise JobIdMalformed(f"the stored {self.capabilities.title} task id is malformed", fix="generate again")
        return quote(task_id, safe="")

    def _error(self, response: httpx.Response) -> ProviderError:
        """An HTTP error as the error class of its meaning, with the host's words labelled as the host's."""
        host, status = self.capabilities.title, response.status_code
        said = f"{host} said: {clean_remote_text(http.problem_text(response), 300)}"
        if status in (401, 403):
            return AuthFailed(f"{host} refused the credentials. {said}", fix=f"check {self.capabilities.key_env}")
        if status == 402:
            return Billing(f"{host} needs billing set up. {said}",
                           fix=f"add credit or a payment method at {host}, or use provider=\"preview\"")
        if status == 429:
            return Throttled(f"{host} is throttling requests. {said}", fix="wait a minute and try again")
        if status in (400, 412, 422):
            return InvalidParameter(f"{host} rejected an input. {said}",
                                    fix="fix what the host names; list_references checks the files and labels")
        if status == 404:
            return JobUnknown(f"{host} does not know this job. {said}", fix="generate again")
        if status >= 500:
            return HostUnavailable(f"{host} answered HTTP {status}. {said}", fix="try again later")
        return HostRefused(f"{host} answered HTTP {status}. {said}", fix="try again later")
