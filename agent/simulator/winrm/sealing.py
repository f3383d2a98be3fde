"""WinRM message encryption over plain HTTP (what a Windows host requires unless
AllowUnencrypted is set): each SOAP message travels sealed with the connection's NTLM context
in a ``multipart/encrypted`` body ([MS-WSMV] 2.2.9.1):

    --Encrypted Boundary
    \tContent-Type: application/HTTP-SPNEGO-session-encrypted
    \tOriginalContent: type=application/soap+xml;charset=UTF-8;Length=<plain length>
    --Encrypted Boundary
    \tContent-Type: application/octet-stream
    <4-byte little-endian signature length><signature><sealed message>--Encrypted Boundary--
"""

from __future__ import annotations

import re
import struct
from typing import Any

BOUNDARY = b"--Encrypted Boundary"
SPNEGO = "application/HTTP-SPNEGO-session-encrypted"
CONTENT_TYPE = f'multipart/encrypted;protocol="{SPNEGO}";boundary="Encrypted Boundary"'
_SPLIT = re.compile(rb"--\s*Encrypted Boundary\r\n")


class SealingError(ValueError):
    """The body is not a message sealed with this connection's context."""


def is_sealed(content_type: str) -> bool:
    return content_type.lower().startswith("multipart/encrypted")


def unseal(context: Any, body: bytes) -> bytes:
    parts = [p for p in _SPLIT.split(body) if p]
    if len(parts) != 2:
        raise SealingError("expected one sealed message")
    header, payload = parts[0].strip(), parts[1]
    try:
        length = int(header.split(b"Length=")[1])
    except (IndexError, ValueError):
        raise SealingError("no OriginalContent length") from None
    payload = payload.removesuffix(BOUNDARY + b"--\r\n")
    payload = payload.replace(b"\tContent-Type: application/octet-stream\r\n", b"", 1)
    if len(payload) < 4:
        raise SealingError("no signature")
    (signature_length,) = struct.unpack("<i", payload[:4])
    signature = payload[4 : 4 + signature_length]
    plain = context.unwrap_winrm(signature, payload[4 + signature_length :])
    if len(plain) != length:
        raise SealingError(f"length {len(plain)} != {length}")
    return bytes(plain)


def seal(context: Any, message: bytes) -> bytes:
    signature, sealed, padding = context.wrap_winrm(message)
    head = b"\r\n".join(
        [
            BOUNDARY,
            f"\tContent-Type: {SPNEGO}".encode(),
            (
                "\tOriginalContent: type=application/soap+xml;charset=UTF-8;"
                f"Length={len(message) + padding}"
            ).encode(),
            BOUNDARY,
            b"\tContent-Type: application/octet-stream",
            b"",
        ]
    )
    return head + struct.pack("<i", len(signature)) + signature + sealed + BOUNDARY + b"--\r\n"
