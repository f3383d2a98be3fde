"""Where a backup's requests spent their time, by path: read a ``--requests-out`` run's
``NAME-full.timeline.tsv`` (finished at, server ms, body bytes, "METHOD path").

    python -m bench.timeline bench/out/req-full.timeline.tsv

A page chain (a delta round, a list followed by nextLink) is sequential: its span divided by
its pages is its cycle, and the cycle less the server's time is what the agent and the
network added. The longest chains set the run's wall time.
"""

from __future__ import annotations

import argparse
import statistics
from collections import defaultdict
from pathlib import Path


def summary(path: Path, top: int = 25) -> list[str]:
    by_path: dict[str, list[tuple[float, float, int]]] = defaultdict(list)
    for line in path.read_text().splitlines():
        at, ms, size, what = line.split("\t")
        by_path[what].append((float(at), float(ms), int(size)))
    header = (
        f"{'path':55} {'n':>5} {'from s':>6} {'to s':>6} {'span':>5} "
        f"{'srv med':>7} {'srv p90':>7} {'cycle ms':>8} {'MB':>6}"
    )
    lines = [header]
    ranked = sorted(by_path.items(), key=lambda kv: -len(kv[1]))[:top]
    for what, rows in ranked:
        rows.sort()
        ends = [at for at, _, _ in rows]
        server = sorted(ms for _, ms, _ in rows)
        start = ends[0] - server[0] / 1000
        span = ends[-1] - start
        lines.append(
            f"{what[:55]:55} {len(rows):5} {start:6.1f} {ends[-1]:6.1f} {span:5.1f} "
            f"{statistics.median(server):7.1f} {server[int(len(server) * 0.9)]:7.1f} "
            f"{span / len(rows) * 1000:8.1f} {sum(s for _, _, s in rows) / 1e6:6.1f}"
        )
    total = sum(s for rows in by_path.values() for _, _, s in rows)
    lines.append(f"answers: {total / 1e6:.1f} MB")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("timeline", type=Path)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    print("\n".join(summary(args.timeline, args.top)))


if __name__ == "__main__":
    main()
