"""Stream properties (a branding image): read as bytes with their content type, written as raw
bytes by PUT."""

from __future__ import annotations

from agent.graph.responses import display, response_error, write_refusal
from agent.graph.transport import GraphTransport


def get_media(transport: GraphTransport, path: str) -> tuple[bytes, str] | None:
    """(bytes, content type), or None when it is not set — Graph answers 404 or, as
    documented for branding, 200 with ``{}``."""
    url = transport.resolve(path)
    response = transport.send("GET", url, headers={"Accept": "*/*"})
    if response.status_code == 404:
        return None
    if response.status_code >= 400:
        raise response_error(response, f"GET {display(url)}")
    content_type = response.headers.get("Content-Type", "").split(";")[0].strip()
    if not response.content or content_type == "application/json":
        return None
    return response.content, content_type or "application/octet-stream"


def put_media(transport: GraphTransport, path: str, data: bytes, content_type: str) -> None:
    """PUT the stream as raw bytes with its content type."""
    url = transport.resolve(path)
    response = transport.send("PUT", url, data=data, headers={"Content-Type": content_type})
    if response.status_code >= 400:
        raise write_refusal("PUT", url, response)
