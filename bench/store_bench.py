"""Micro-benchmark of the repository's write path: CPU per object, one thread, no network.

    python -m bench.store_bench [--users 20000] [--rounds 3]

Objects are the simulator's generated tenant (users, groups, devices, apps, … and one member
list per group), as a backup stores them. Reports the median over ``--rounds`` of CPU µs per
object (``time.process_time`` around each call, each object decoded from JSON just before,
as a backup meets it; the machine's load matters little) for each step of a put:
canonical JSON, the blob id (HMAC), the seal (compress + encrypt), and whole puts — of new
content into an empty repository, of content already stored (in this process, and after the
repository is reopened, as an incremental backup meets it). ``--prefill N`` stores N small
blobs first: the index of a large tenant's repository. Prints JSON; tests never time.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.simulator.graph.directory import Directory
from agent.simulator.graph.generator import generate
from agent.store.keys import RepositoryKey
from agent.store.repository import Repository, canonical_json


def tenant_objects(users: int) -> list[dict[str, Any]]:
    directory = Directory("00000000-0000-4000-8000-000000000001", "contoso.onmicrosoft.com")
    generate(directory, 42, users, users // 5)
    objects: list[dict[str, Any]] = []
    with directory.lock:
        for kind in directory._rows:  # every generated kind, as rows
            objects.extend(dict(row) for _, row in directory.scan(kind, 0))
        for group_id, members in directory.members_of.items():
            objects.append({"groupId": group_id, "members": sorted(members)})
    return objects


def _cpu_us(texts: list[bytes], work: Callable[[Any], Any]) -> float:
    """CPU µs of ``work`` per object, each object decoded from its JSON just before, as a
    backup meets it (hot in the CPU's caches); the timer's own cost is taken off."""
    spent = 0.0
    clock = time.process_time
    for text in texts:
        obj = json.loads(text)
        started = clock()
        work(obj)
        spent += clock() - started
    return spent / len(texts) * 1e6


def one_round(objects: list[dict[str, Any]], root: Path, prefill: int) -> dict[str, float]:
    key = RepositoryKey.generate()
    if prefill:  # a repository that already holds a large tenant's blobs
        filled = Repository.init(root, key)
        for i in range(prefill):
            filled.put({"id": i})
        filled.sync()
        filled.close()
    texts = [json.dumps(o).encode() for o in objects]
    timer = _cpu_us(texts, lambda o: None)

    def net(work: Callable[[Any], Any]) -> float:
        return _cpu_us(texts, work) - timer

    figures = {
        "canonical_json": net(canonical_json),
        "json.dumps (reference)": net(
            lambda o: json.dumps(
                o, sort_keys=True, separators=(",", ":"), ensure_ascii=False
            ).encode(),
        ),
        "hmac": net(lambda o: hmac.new(key.mac_key, b"%r" % o, hashlib.sha256).digest())
        - net(lambda o: b"%r" % o),
    }
    repo = Repository.open(root, key) if prefill else Repository.init(root, key)
    sealer = getattr(repo, "_sealer", None)  # before agent/store/sealing.py: Repository._seal
    seal = sealer.seal if sealer is not None else getattr(repo, "_seal")  # noqa: B009
    figures["seal"] = (
        net(lambda o: seal("0" * 64, b"J", canonical_json(o))) - figures["canonical_json"]
    )
    figures["put new"] = net(repo.put)
    started = time.process_time()
    repo.sync()
    figures["sync"] = (time.process_time() - started) / len(texts) * 1e6
    figures["put stored (same process)"] = net(repo.put)
    repo.close()
    repo = Repository.open(root, key)
    figures["put stored (reopened)"] = net(repo.put)
    blobs, size = repo.stats()
    repo.close()
    figures["bytes on disk per blob"] = size / blobs
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--prefill", type=int, default=0, help="blobs stored before measuring (a larger index)"
    )
    args = parser.parse_args()
    objects = tenant_objects(args.users)
    rounds = []
    for r in range(args.rounds):
        with tempfile.TemporaryDirectory(prefix="store-bench-") as tmp:
            rounds.append(one_round(objects, Path(tmp) / f"repo{r}", args.prefill))
    result: dict[str, Any] = {
        "objects": len(objects),
        "mean canonical JSON bytes": round(
            statistics.mean(len(canonical_json(o)) for o in objects)
        ),
    }
    for name in rounds[0]:
        result[name] = round(statistics.median(f[name] for f in rounds), 1)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
