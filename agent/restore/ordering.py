"""Which kinds a restore reads live, and in which order it plans and writes them."""

from __future__ import annotations

from collections.abc import Sequence

from agent.kinds import KindSpec
from agent.restore.restorers import deleted_kind_of


def ordered(kinds: Sequence[KindSpec]) -> list[KindSpec]:
    """``kinds`` with every kind after the kinds its ``after`` names (registry order else), so
    recreated objects exist (and are in the id map) before links name them."""
    chosen = {k.name: k for k in kinds}
    done: list[KindSpec] = []
    seen: set[str] = set()

    def visit(spec: KindSpec) -> None:
        if spec.name in seen:
            return
        seen.add(spec.name)
        for name in spec.after:
            if name in chosen:
                visit(chosen[name])
        done.append(spec)

    for spec in kinds:
        visit(spec)
    return done


def live_kinds(kinds: Sequence[KindSpec]) -> list[KindSpec]:
    """What to read live to plan ``kinds``: them, and the recycle bin of their object kinds."""
    extra = [d for k in kinds if (d := deleted_kind_of(k)) is not None]
    names = {k.name for k in kinds}
    return [*kinds, *(d for d in extra if d.name not in names)]
