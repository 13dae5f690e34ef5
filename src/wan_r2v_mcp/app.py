"""The application state every tool receives: what one running server holds, typed, so a reader (and a type
checker) can follow a call from a tool into the runner."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio

from .errors import LedgerUnavailable

if TYPE_CHECKING:
    from .config import Settings
    from .delivery import Signer
    from .jobs.runner import Runner
    from .store import Store


@dataclass
class AppState:
    settings: Settings
    ledger: Store  # the store every row goes through
    runner: Runner  # the verbs on tasks, sequences and the cast
    signer: Signer  # signs the download URLs of finished videos


class Starting:
    """What the lifespan gives the SDK at once, before the runner is made: the server answers `initialize` and
    `tools/list` while the runner's code (most of this package) is imported off the event loop and the ledger is
    opened; a call that needs them waits for `ready()`. When the ledger cannot be opened (a database that does not
    answer), the server stays up and every such call says why, rather than a client seeing it vanish."""

    def __init__(self) -> None:
        self._app: AppState | None = None
        self._failed: LedgerUnavailable | None = None
        self._made = anyio.Event()

    def made(self, app: AppState) -> None:
        self._app = app
        self._made.set()

    def failed(self, error: LedgerUnavailable) -> None:
        self._failed = error
        self._made.set()

    @property
    def failure(self) -> LedgerUnavailable | None:
        return self._failed

    async def ready(self) -> AppState:
        """The state, once made; LedgerUnavailable if it could not be."""
        if self._app is None:
            await self._made.wait()
        if self._app is None:
            assert self._failed is not None
            raise self._failed
        return self._app

    @property
    def app(self) -> AppState | None:
        """The state once made (None before): for code that runs only after `ready()`, or that may find none."""
        return self._app
