"""WinRM message encryption over plain HTTP (what a Windows host requires unless
AllowUnencrypted is set): each SOAP message travels sealed with the connection's auth context
(NTLM or Kerberos inside Negotiate, or CredSSP's inner TLS channel) in a ``multipart/encrypted``
body ([MS-WSMV] 2.2.9.1):

    --Encrypted Boundary
    \tContent-Type: application/HTTP-SPNEGO-session-encrypted
    \tOriginalContent: type=application/soap+xml;charset=UTF-8;Length=<plain length>
    --Encrypted Boundary
    \tContent-Type: application/octet-stream
    <4-byte little-endian header length><header><sealed message>--Encrypted Boundary--

The protocol names the auth (SPNEGO, Kerberos, CredSSP). CredSSP seals with TLS records of at
most 16 KiB, so a longer message is cut into 16 KiB chunks, each its own pair of parts, in a
``multipart/x-multi-encrypted`` body ([MS-WSMV] 2.2.9.1.2).
"""

from __future__ import annotations

import re
import struct
from typing import Any

BOUNDARY = b"--Encrypted Boundary"
SPNEGO = "application/HTTP-SPNEGO-session-encrypted"
KERBEROS = "application/HTTP-Kerberos-session-encrypted"
CREDSSP = "application/HTTP-CredSSP-session-encrypted"
CHUNK = 16384  # CredSSP: one TLS record's worth of plain text per sealed part
_SPLIT = re.compile(rb"--\s*Encrypted Boundary\r\n")
_END = re.compile(rb"--\s*Encrypted Boundary--\r\n$")
_PROTOCOL = re.compile(r'protocol="([^"]+)"', re.IGNORECASE)
# Which sealing protocols each auth's context may be used with.
PROTOCOLS = {"negotiate": (SPNEGO,), "kerberos": (SPNEGO, KERBEROS), "credssp": (CREDSSP,)}


class SealingError(ValueError):
    """The body is not a message sealed with this connection's context."""


def is_sealed(content_type: str) -> bool:
    lowered = content_type.lower()
    return lowered.startswith(("multipart/encrypted", "multipart/x-multi-encrypted"))


def protocol_of(content_type: str) -> str:
    """The sealing protocol a sealed body's Content-Type names."""
    found = _PROTOCOL.search(content_type)
    if found is None:
        raise SealingError("no protocol in the Content-Type of a sealed message")
    return found.group(1)


def parts(body: bytes) -> int:
    """How many sealed messages (chunks) a sealed body holds."""
    return len([p for p in _SPLIT.split(body) if p]) // 2


def unseal(context: Any, body: bytes) -> bytes:
    """The plain message of a sealed body (every part, in order)."""
    parts = [p for p in _SPLIT.split(body) if p]
    if not parts or len(parts) % 2:
        raise SealingError("expected sealed messages as header and data part pairs")
    plain = bytearray()
    for header, payload in zip(parts[::2], parts[1::2], strict=True):
        try:
            length = int(header.strip().split(b"Length=")[1])
        except (IndexError, ValueError):
            raise SealingError("no OriginalContent length") from None
        payload = _END.sub(b"", payload)
        payload = payload.replace(b"\tContent-Type: application/octet-stream\r\n", b"", 1)
        if len(payload) < 4:
            raise SealingError("no signature")
        (header_length,) = struct.unpack("<i", payload[:4])
        signature = payload[4 : 4 + header_length]
        chunk = context.unwrap_winrm(signature, payload[4 + header_length :])
        if len(chunk) != length:
            raise SealingError(f"length {len(chunk)} != {length}")
        plain += chunk
    return bytes(plain)


def seal(context: Any, message: bytes, protocol: str) -> tuple[str, bytes]:
    """(Content-Type, body) of ``message`` sealed with ``context`` for ``protocol``."""
    multi = protocol == CREDSSP and len(message) > CHUNK
    chunks = [message[i : i + CHUNK] for i in range(0, len(message), CHUNK)] if multi else [message]
    body = b"".join(_seal_part(context, chunk, protocol) for chunk in chunks)
    kind = "multipart/x-multi-encrypted" if multi else "multipart/encrypted"
    content_type = f'{kind};protocol="{protocol}";boundary="Encrypted Boundary"'
    return content_type, body + BOUNDARY + b"--\r\n"


def _seal_part(context: Any, message: bytes, protocol: str) -> bytes:
    wrapped: tuple[bytes, bytes, int] = context.wrap_winrm(message)
    signature, sealed, padding = wrapped
    head = b"\r\n".join(
        [
            BOUNDARY,
            f"\tContent-Type: {protocol}".encode(),
            (
                "\tOriginalContent: type=application/soap+xml;charset=UTF-8;"
                f"Length={len(message) + padding}"
            ).encode(),
            BOUNDARY,
            b"\tContent-Type: application/octet-stream",
            b"",
        ]
    )
    return head + struct.pack("<i", len(signature)) + signature + sealed
