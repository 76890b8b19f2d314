"""Which entries run, and in what order: longest first, and split into balanced shards."""

from __future__ import annotations

from collections.abc import Sequence

from awrepro.registry import Entry


def longest_first(entries: Sequence[Entry], durations: dict[str, float]) -> list[Entry]:
    """Entries with no recorded duration go first: they may be the longest of all."""
    unknown = max(durations.values(), default=0.0) + 1.0
    order = {e.full_id: i for i, e in enumerate(entries)}
    return sorted(entries, key=lambda e: (-durations.get(e.full_id, unknown), order[e.full_id]))


def shard(entries: Sequence[Entry], index: int, count: int, durations: dict[str, float]) -> list[Entry]:
    """Shard ``index`` (1-based) of ``count``: every entry lands in exactly one shard.

    With recorded durations, entries are dealt longest first to the least loaded shard (LPT);
    without, round-robin by id. Shards agree only when they read the same history.
    """
    ordered = sorted(entries, key=lambda e: e.full_id)
    if not any(e.full_id in durations for e in ordered):
        return [e for i, e in enumerate(ordered) if i % count == index - 1]
    default = sum(durations.values()) / max(len(durations), 1)
    loads = [0.0] * count
    assigned: list[list[Entry]] = [[] for _ in range(count)]
    for entry in sorted(ordered, key=lambda e: -durations.get(e.full_id, default)):
        target = min(range(count), key=lambda k: (loads[k], k))
        loads[target] += durations.get(entry.full_id, default)
        assigned[target].append(entry)
    chosen = {e.full_id for e in assigned[index - 1]}
    return [e for e in ordered if e.full_id in chosen]


def parse_shard(text: str) -> tuple[int, int]:
    from awrepro.errors import UsageError

    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise UsageError(f"--shard {text!r}: use K/N, e.g. 1/3") from None
    if not 1 <= index <= count:
        raise UsageError(f"--shard {text!r}: K must be between 1 and N")
    return index, count
