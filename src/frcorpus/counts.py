"""What a stage counts in one task (records in, kept, rejected by reason, seconds, its own counters),
as the task's stats file holds it, and the sum of those over the tasks that stats.json reports.
Below both the stages, which count, and the version writer, which adds the tasks' counts up."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class StageStats:
    """What one stage did in one task; merged across tasks by the engine."""

    n_in: int = 0
    kept: int = 0
    rejected: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    counters: Counter = field(default_factory=Counter)

    def to_json(self) -> dict[str, Any]:
        return {
            "in": self.n_in,
            "kept": self.kept,
            "rejected": dict(sorted(self.rejected.items())),
            "seconds": round(self.seconds, 4),
            **({"counters": dict(sorted(self.counters.items()))} if self.counters else {}),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StageStats:
        return cls(
            data["in"], data["kept"], Counter(data["rejected"]), data["seconds"], Counter(data.get("counters", {}))
        )

    def __iadd__(self, other: StageStats) -> StageStats:
        self.n_in += other.n_in
        self.kept += other.kept
        self.rejected.update(other.rejected)
        self.seconds += other.seconds
        self.counters.update(other.counters)
        return self
