"""The simulated Microsoft Graph v1.0: directory state, generator, delta, throttling, $batch."""

from agent.simulator.graph.churn import ChurnSummary
from agent.simulator.graph.directory import Directory, DirectoryError
from agent.simulator.graph.faults import Faults
from agent.simulator.graph.generator import generate
from agent.simulator.graph.pipeline import GraphApi
from agent.simulator.graph.routes import register_routes

__all__ = [
    "ChurnSummary",
    "Directory",
    "DirectoryError",
    "Faults",
    "GraphApi",
    "generate",
    "register_routes",
]
