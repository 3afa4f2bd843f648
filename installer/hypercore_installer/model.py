"""The plan as a value: steps, refusals, and how to print them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from hypercore.errors import ProblemsError, plural

from .sizes import human


@dataclass(frozen=True)
class Step:
    """One thing apply does. `action` names the function that does it
    (see steps/__init__.py), `params` is everything that function needs."""

    id: str
    action: str
    title: str
    destructive: bool
    writes: tuple[str, ...]
    params: dict = field(default_factory=dict, hash=False, compare=True)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["writes"] = list(self.writes)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Step":
        return cls(d["id"], d["action"], d["title"], d["destructive"], tuple(d["writes"]), d["params"])


@dataclass(frozen=True)
class Plan:
    """Everything apply will do, in order; built by plan.build_plan."""

    target: dict
    source: dict
    disks: dict
    steps: tuple[Step, ...]

    def to_dict(self) -> dict:
        return {"target": self.target, "source": self.source, "disks": self.disks,
                "steps": [s.to_dict() for s in self.steps]}

    @classmethod
    def from_dict(cls, d: dict) -> "Plan":
        return cls(d["target"], d["source"], d["disks"], tuple(Step.from_dict(s) for s in d["steps"]))

    def render(self) -> str:
        t = self.target
        lines = [f"Install Hypercore on {describe_disk(t)}",
                 f"  image: {human(self.source['image_bytes'])} from {self.source['path']}"
                 f" ({self.source['why']})"]
        for role, disks in self.disks.items():
            for d in disks:
                lines.append(f"  {role}: {describe_disk(d)}")
        lines.append("Steps:")
        width = len(str(len(self.steps)))
        for n, s in enumerate(self.steps, 1):
            mark = "DESTRUCTIVE" if s.destructive else "           "
            lines.append(f"  {n:>{width}}. {mark}  {s.title}  [writes {', '.join(s.writes)}]")
        return "\n".join(lines)


def describe_disk(d: dict) -> str:
    bits = [b for b in (d.get("model"), human(d.get("size")),
                        f"serial {d['serial']}" if d.get("serial") else None) if b]
    return f"{d['path']} ({', '.join(bits)})"


@dataclass(frozen=True)
class Refusal:
    """Why a plan cannot be made: where in the answers, which disk, what, how to fix."""

    where: str
    what: str
    hint: str
    disk: str | None = None

    def __str__(self) -> str:
        at = f"{self.where} ({self.disk})" if self.disk else self.where
        return f"{at}: {self.what}\n    hint: {self.hint}"


class PlanRefused(ProblemsError):
    """Every refusal at once; nothing was changed."""

    def __init__(self, refusals: list[Refusal]):
        self.refusals = refusals
        super().__init__(f"the install is refused ({plural(len(refusals), 'problem')}); nothing was changed",
                         refusals,
                         hint="fix the answer file or the machine, then run `hypercore-install plan FILE` again")
