"""The install journal: which steps of which plan are done, so a re-run after
a crash resumes instead of starting over.

A JSON file (default /run/hypercore-install/journal.json, mode 0600: it holds
the answers): {"version", "answers_digest", "plan", "ids", "done": [step ids]}.
Every update is written atomically (temporary file, fsync, rename).
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

from hypercore.errors import UserError
from hypercore import files
from hypercore.files import write_atomic

DEFAULT_PATH = Path("/run/hypercore-install/journal.json")
VERSION = 1


def digest(answers: dict) -> str:
    return hashlib.sha256(json.dumps(answers, sort_keys=True).encode()).hexdigest()


class Journal:
    """A journal kept in a file."""

    def __init__(self, path: Path, state: dict):
        self.path = Path(path)
        self.state = state

    @classmethod
    def load(cls, path: Path) -> "Journal | None":
        """The journal at path, or None if there is none."""
        try:
            state = json.loads(Path(path).read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as e:
            raise UserError(f"the install journal {path} is unreadable: {e}",
                            hint=f"remove it to start the install over: rm {path}") from None
        if not isinstance(state, dict) or state.get("version") != VERSION or "plan" not in state:
            raise UserError(f"{path} is not an install journal of this installer",
                            hint=f"remove it to start the install over: rm {path}")
        return cls(path, state)

    @classmethod
    def create(cls, path: Path, answers: dict, plan: dict, ids: dict) -> "Journal":
        j = cls(path, {"version": VERSION, "answers_digest": digest(answers), "plan": plan,
                       "ids": ids, "done": [], "started": time.time()})
        j.save()
        return j

    @property
    def done(self) -> list[str]:
        return list(self.state["done"])

    def mark_done(self, step_id: str) -> None:
        if step_id not in self.state["done"]:
            self.state["done"].append(step_id)
        self.state["updated"] = time.time()
        self.save()

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_atomic(self.path, json.dumps(self.state, indent=1), 0o600)

    def finish(self) -> None:
        """The install is complete: keep the journal as a record, renamed."""
        self.state["finished"] = time.time()
        self.save()
        files.replace(self.path, self.path.with_suffix(".done.json"))


class MemoryJournal(Journal):
    """A journal that is never written (dry runs)."""

    def __init__(self, answers: dict, plan: dict, ids: dict):
        super().__init__(Path("/dev/null"), {"version": VERSION, "answers_digest": digest(answers),
                                             "plan": plan, "ids": ids, "done": []})

    def save(self) -> None:
        pass

    def finish(self) -> None:
        pass
