"""Import a JSONL export of the case system's history through intake: same events, same rules, resumable.

One event per line, exactly as the webhook would receive it. Lines are sent in batches to IntakeService.receive
(stored in the inbox, applied in one transaction per batch). After each batch the number of lines done is written
to a state file next to the export, with the lines refused so far; a re-run skips those lines and goes on. If the
run stopped between a batch's commit and the state file's write, that batch is sent again: the inbox knows its
events (duplicates), so nothing changes twice. A line that is not a JSON object, or whose event is refused, is
reported with its line number; an event that failed but was applied later in the file (e.g. a status change that
came before its report) is no longer reported.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from intake_adapter.inbox import echo_id
from intake_adapter.results import EventResult
from intake_adapter.service import IntakeService

STATE_SUFFIX = ".import-state.json"
DEFAULT_BATCH = 500
MAX_LINE_BYTES = 1_000_000


@dataclass
class LineError:
    """A line that was not applied: its number (1-based), event id if it had one, and why."""

    line: int
    event_id: str | None
    error: str

    def __str__(self) -> str:
        who = f" event {self.event_id}" if self.event_id else ""
        return f"line {self.line}{who}: {self.error}"


@dataclass
class ImportState:
    """How far an import got (lines done) and the lines refused so far; saved after every batch."""

    size: int  # the export's size when the import began: a different file is not resumed
    lines_done: int = 0
    bytes_done: int = 0
    applied: int = 0
    duplicate: int = 0
    errors: list[LineError] = field(default_factory=list)

    def to_json(self) -> str:
        data = {
            "size": self.size,
            "lines_done": self.lines_done,
            "bytes_done": self.bytes_done,
            "applied": self.applied,
            "duplicate": self.duplicate,
            "errors": [[e.line, e.event_id, e.error] for e in self.errors],
        }
        return json.dumps(data, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> ImportState:
        data = json.loads(text)
        errors = [LineError(int(line), eid, str(err)) for line, eid, err in data["errors"]]
        return cls(
            int(data["size"]),
            int(data["lines_done"]),
            int(data["bytes_done"]),
            int(data["applied"]),
            int(data["duplicate"]),
            errors,
        )


def state_path(export: Path) -> Path:
    """Where the progress of importing `export` is kept."""
    return export.with_name(export.name + STATE_SUFFIX)


def load_state(export: Path, restart: bool = False) -> ImportState:
    """The saved progress of this export, or a fresh start (restart, no state, or the file changed size)."""
    size = export.stat().st_size
    path = state_path(export)
    if not restart and path.exists():
        try:
            state = ImportState.from_json(path.read_text(encoding="utf-8"))
        except (ValueError, KeyError, TypeError):
            state = None
        if state is not None and state.size == size:
            return state
    return ImportState(size)


def save_state(export: Path, state: ImportState) -> None:
    """Write the progress atomically (a crash leaves the old state or the new one, never half)."""
    path = state_path(export)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(state.to_json(), encoding="utf-8")
    os.replace(tmp, path)


def _batches(export: Path, state: ImportState, size: int) -> Iterator[tuple[list[tuple[int, object]], int, int]]:
    """Yield ([(line number, parsed event or a LineError)], lines read, bytes read) from where the state left off."""
    with export.open("rb") as f:
        f.seek(state.bytes_done)
        number, done = state.lines_done, state.bytes_done
        batch: list[tuple[int, object]] = []
        for raw in f:
            number += 1
            done += len(raw)
            text = raw.strip()
            if not text:
                continue  # blank lines (e.g. a trailing newline) are not events
            try:
                if len(raw) > MAX_LINE_BYTES:
                    raise ValueError(f"the line is longer than {MAX_LINE_BYTES:,} bytes")
                batch.append((number, json.loads(text)))
            except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
                batch.append((number, LineError(number, None, f"not valid JSON: {exc}")))
            if len(batch) >= size:
                yield batch, number, done
                batch = []
        yield batch, number, done


def import_history(
    service: IntakeService,
    export: Path,
    *,
    batch_size: int = DEFAULT_BATCH,
    restart: bool = False,
    on_batch: Callable[[ImportState], None] | None = None,
) -> ImportState:
    """Import the export from where a previous run stopped; return the final state (errors: lines not applied)."""
    state = load_state(export, restart)
    failing: dict[str, LineError] = {e.event_id: e for e in state.errors if e.event_id is not None}
    for batch, lines, done in _batches(export, state, batch_size):
        events = [(n, ev) for n, ev in batch if not isinstance(ev, LineError)]
        state.errors += [ev for _, ev in batch if isinstance(ev, LineError)]
        if events:
            outcome = service.receive([ev for _, ev in events])
            for (number, _), res in zip(events, outcome.results, strict=True):
                _note(state, failing, number, res)
            for res in outcome.also_applied:  # an earlier line's event, unblocked by this batch
                _note(state, failing, 0, res)
        state.lines_done, state.bytes_done = lines, done
        state.errors = [e for e in state.errors if e.event_id is None or failing.get(e.event_id) is e]
        save_state(export, state)
        if on_batch is not None:
            on_batch(state)
    return state


def _note(state: ImportState, failing: dict[str, LineError], number: int, res: EventResult) -> None:
    if res.ok:
        if res.result == "applied":
            state.applied += 1
        else:
            state.duplicate += 1
        if res.event_id is not None:
            failing.pop(res.event_id, None)
        return
    error = LineError(number, echo_id(res.event_id), f"{res.result} [{res.status} {res.error}] {res.detail}")
    if res.event_id is not None:
        failing[res.event_id] = error
    state.errors.append(error)
