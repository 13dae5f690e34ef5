"""The application state every tool receives: what one running server holds, typed, so a reader (and a type
checker) can follow a call from a tool into the runner."""

from __future__ import annotations

from dataclasses import dataclass

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
