"""The first page of every small list kind of a job, read together in $batch.

Some 25 Entra kinds (policies, deleted items per type, role definitions, domains, …) are read
in full every run, most of them in a single request. One GET each is one round trip and one
request each; 20 of them fit one $batch (facts file §1). The first list collector that asks
sends the batches for all of them; each kind's collector then takes its own answer and follows
its nextLink, if any, as it would have. An item Graph refused (licence, permission, throttled
beyond the retries) is not handed out: that kind reads its first page itself and fails or
skips exactly as it does without the batch. Paths with a request rate of their own
(conditional access: 1 request/s) are left out: their items would hold the whole batch back.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlencode

from agent.graph.client import BatchRequest, GraphClient
from agent.kinds.spec import KindSpec

COLLECTOR = "graph.list"


def request_params(kind: KindSpec) -> dict[str, str]:
    """The query the kind's first request carries (the list collector sends the same)."""
    return {"$select": ",".join(kind.select)} if kind.select else {}


class FirstPages:
    def __init__(self, graph: GraphClient, kinds: Iterable[KindSpec]) -> None:
        self._graph = graph
        self._kinds = [k for k in kinds if k.path and not graph.pacer.limit_for(k.path)]
        self._lock = threading.Lock()
        self._answers: dict[str, dict[str, Any]] | None = None

    @classmethod
    def for_job(
        cls, graph: GraphClient, kinds: Iterable[KindSpec], roles: set[str]
    ) -> FirstPages | None:
        """For the job's list kinds it may read; None when fewer than two would share."""
        listed = [
            k
            for k in kinds
            if k.collector == COLLECTOR and not k.opt_in and not k.missing_read_permission(roles)
        ]
        pages = cls(graph, listed)
        return pages if len(pages._kinds) > 1 else None

    def take(self, kind: KindSpec) -> dict[str, Any] | None:
        """The kind's first answer (once), or None: read it yourself."""
        with self._lock:
            if self._answers is None:
                self._answers = self._read()
            return self._answers.pop(kind.name, None)

    def _read(self) -> dict[str, dict[str, Any]]:
        requests = []
        for kind in self._kinds:
            assert kind.path
            query = urlencode(request_params(kind), safe="$,")
            url = f"{kind.path}?{query}" if query else kind.path
            requests.append(BatchRequest(id=kind.name, method="GET", url=url))
        return {
            result.id: result.body
            for result in self._graph.run_batches(requests)
            if result.status == 200 and isinstance(result.body, dict)
        }
