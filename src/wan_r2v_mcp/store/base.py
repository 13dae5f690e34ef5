"""The Store contract: every row the server keeps goes through these methods, and nothing else writes them.

Each write is its own transaction. Task rows change only by compare-and-set on their phase (`transition`,
`adopt`), which `jobs.lifecycle` alone calls; sequence rows only by compare-and-set on their version. Money is
decided by `admit`, inside one transaction: the duplicate guard, the caps and the record of the task (or the
sequence) happen together or not at all, whatever the number of servers sharing the store.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .records import CastRoom, Character, SequenceMove, SequenceRecord, Spend, TaskRecord


class Store(ABC):
    # Whether servers on other machines share it: then a lease is never voided by asking this machine whether its
    # holder's process still runs (another host's pid means nothing here), only by its end.
    shared_across_hosts: bool = False

    # -- task rows: written only through jobs.lifecycle

    @abstractmethod
    def insert(self, **values: Any) -> None:
        """Record a new task (created_at and updated_at default to now)."""

    @abstractmethod
    def transition(self, task_id: str, from_phases: Sequence[str], phase: str, status: str,
                   values: dict[str, Any], *, durable: bool = True) -> bool:
        """Set the task's phase, status and columns only while its phase is one of `from_phases`. `durable=False`
        (a change nothing relies on after a power cut: `jobs.lifecycle` decides) commits without waiting for the
        disk: a crash of the server never undoes it, a power cut may, and the next durable commit makes it durable
        too."""

    @abstractmethod
    def adopt(self, task_id: str, provider: str, provider_task_id: str, from_phases: Sequence[str], phase: str,
              status: str, values: dict[str, Any]) -> bool:
        """As `transition`, also storing the host job's id: only if no other task follows that job and this task
        follows no other job."""

    @abstractmethod
    def get(self, task_id: str) -> TaskRecord | None: ...

    @abstractmethod
    def list(self, *, limit: int = 20, status: str | None = None, owner: str = "") -> tuple[list[TaskRecord], int]:
        """A caller's newest tasks (newest first, of one status if given) and how many there are in all."""

    @abstractmethod
    def followed(self, provider: str, provider_task_ids: Sequence[str]) -> set[str]:
        """Which of these host jobs a task already follows."""

    @abstractmethod
    def unfinished(self) -> list[TaskRecord]:
        """Every task not yet in a final phase, oldest first."""

    # -- money

    @abstractmethod
    def admit(self, *, owner: str, check: Callable[[Spend], None], task: dict[str, Any] | None = None,
              duplicate_of: tuple[str, float] | None = None, sequence_id: str | None = None,
              shot: int | None = None, reserve: dict[int, float] | None = None,
              new_sequence: SequenceRecord | None = None, move: SequenceMove | None = None) -> TaskRecord | None:
        """Decide a spend atomically. Return an identical recent request's task (`duplicate_of`: fingerprint,
        succeeded since) if there is one; else give `check` what is already spent and planned (it raises to
        refuse), record `task` (a take of `shot` uses up that shot's reservation), set the sequence's reservations
        (`reserve`: shot -> USD), and record `new_sequence` or apply `move`. A `move` that finds the row changed
        undoes it all and raises Conflict."""

    @abstractmethod
    def spent(self, owner: str = "", sequence_id: str | None = None) -> Spend: ...

    @abstractmethod
    def free_work_since(self, owner: str, since: float, providers: Sequence[str]) -> int:
        """How many free things (tasks of these local providers, outside sequences, and stitches) a caller
        started since `since`."""

    @abstractmethod
    def sequence_cost(self, sequence_id: str) -> tuple[float, float]:
        """A sequence's money: what its takes cost (made, or being made), and what its shots still to make plan."""

    # -- leases: which server of several sharing the store follows a task or drives a sequence

    @abstractmethod
    def take_lease(self, task_id: str, holder: str, seconds: float, is_stale: Callable[[str], bool]) -> float:
        """Claim the right to follow `task_id`. Returns 0 when `holder` has it, else the seconds the current
        holder's claim still runs."""

    @abstractmethod
    def renew_leases(self, holder: str, seconds: float) -> set[str]:
        """Extend every claim `holder` has, whatever their number; returns the ids they are on."""

    @abstractmethod
    def holds_lease(self, task_id: str, holder: str) -> bool: ...

    @abstractmethod
    def release_lease(self, task_id: str, holder: str) -> None: ...

    # -- sequences

    @abstractmethod
    def insert_sequence(self, record: SequenceRecord) -> None: ...

    @abstractmethod
    def get_sequence(self, sequence_id: str) -> SequenceRecord | None: ...

    @abstractmethod
    def newest_sequences(self, owner: str, limit: int, phases: Sequence[str] | None = None,
                         ) -> tuple[list[SequenceRecord], int]:
        """A caller's newest sequences and stitches (of these phases if given) and how many there are in all."""

    @abstractmethod
    def unfinished_sequences(self) -> list[SequenceRecord]: ...

    def unclaimed_tasks(self) -> list[str]:
        """Unfinished tasks no live claim covers, oldest first: what a sweep takes up. A store that cannot tell
        gives every unfinished one (taking the lease decides)."""
        return [r.task_id for r in self.unfinished()]

    def unclaimed_sequences(self) -> list[str]:
        return [r.sequence_id for r in self.unfinished_sequences()]

    @abstractmethod
    def move_sequence(self, move: SequenceMove) -> bool:
        """Apply the move if the row is still at its version; False when it changed meanwhile."""

    # -- characters: one row per (caller, name key)

    @abstractmethod
    def get_character(self, owner: str, key: str) -> Character | None: ...

    @abstractmethod
    def list_characters(self, owner: str) -> list[Character]:
        """A caller's characters, by key."""

    @abstractmethod
    def cast_room(self, owner: str, key: str) -> CastRoom: ...

    @abstractmethod
    def save_character(self, character: Character,
                       check: Callable[[Character | None, CastRoom], None]) -> Character | None:
        """In one transaction, give `check` the character of that key (if any) and the room (it raises to
        refuse), then write the character over it. Returns the one it replaced."""

    @abstractmethod
    def delete_character(self, owner: str, key: str) -> Character | None: ...

    @abstractmethod
    def characters_used(self, owner: str, keys: Sequence[str], at: float) -> None:
        """Count one use of each of these characters, at `at`."""

    @abstractmethod
    def file_in_use(self, name: str) -> bool:
        """Whether any character keeps this cast file (as its media, voice or thumbnail)."""

    def listen(self, changed: Callable[[str | None], None], holder: str | None = None) -> None:
        """Hear of changes other servers make (`changed(id)`, or `changed(None)`: read everything again); where the
        store can, it also marks `holder`'s process alive for as long as it runs, so its claims end with it. A store
        on one machine has none to tell: its servers' waiters read the rows again every few seconds (and a dead
        holder there is known by its process id)."""

    def pace(self, host: str, interval: float) -> float | None:
        """Reserve the next slot for a call to `host`, `interval` seconds after the one before whichever server made
        it; returns how long to wait for it. None where the store is one machine's (each server paces itself)."""
        return None

    # -- one reading of a host's job list for every server (where the store is shared)

    def jobs_at_host(self, host: str) -> tuple[int, float] | None:
        """How many unfinished tasks have a job at `host`, and when the oldest was sent (None: none, or the store
        is one machine's and each server reads the list for its own jobs)."""
        return None

    def publish_listing(self, host: str, unfinished: Mapping[str, str], ended: Sequence[str]) -> None:
        """Keep one reading of `host`'s job list (the jobs it showed unfinished, each queued or running, and the ids
        it showed ended), timed by the store's clock, and tell every server it is there."""
        raise NotImplementedError("a store of one machine has no shared listing")

    def read_listing(self, host: str) -> tuple[float, dict[str, str], list[str]] | None:
        """The last reading of `host`'s job list: its age in seconds, the jobs unfinished (id: queued or running)
        and the ids ended (None: none)."""
        return None

    def shared_secret(self, name: str, make: Callable[[], bytes]) -> bytes | None:
        """A key every server sharing the store uses alike (made by `make` the first time); None where the store is
        one machine's (the key is then a file in the data folder)."""
        return None

    def close(self) -> None:
        """Let go of connections; the store is not used after."""
