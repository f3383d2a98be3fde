"""Microsoft Graph access: the client, its resource-unit budget and request costs."""

from agent.graph.budget import ResourceBudget, WriteBudget
from agent.graph.client import (
    BatchRequest,
    BatchResult,
    DeltaRound,
    GraphClient,
    GraphStats,
    Page,
)
from agent.graph.costs import estimate_cost

__all__ = [
    "BatchRequest",
    "BatchResult",
    "DeltaRound",
    "GraphClient",
    "GraphStats",
    "Page",
    "ResourceBudget",
    "WriteBudget",
    "estimate_cost",
]
