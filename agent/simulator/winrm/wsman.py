"""WS-Management SOAP envelopes for the WinRM shell actions PSRP uses.

Parses the requests pypsrp sends (Create, Command, Send, Receive, Signal, Delete, Get) and builds
the replies and faults it expects. Wire facts are from /work/shared/reference/psrp-wsman-notes.md
("the notes").
"""

from __future__ import annotations

import base64
import re
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass

NS: dict[str, str] = {
    "s": "http://www.w3.org/2003/05/soap-envelope",
    "wsa": "http://schemas.xmlsoap.org/ws/2004/08/addressing",
    "wsman": "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd",
    "wsmanfault": "http://schemas.microsoft.com/wbem/wsman/1/wsmanfault",
    "rsp": "http://schemas.microsoft.com/wbem/wsman/1/windows/shell",
    "wst": "http://schemas.xmlsoap.org/ws/2004/09/transfer",
    "cfg": "http://schemas.microsoft.com/wbem/wsman/1/config",
    "pwsh": "http://schemas.microsoft.com/powershell",
    "xml": "http://www.w3.org/XML/1998/namespace",
}
# Same prefixes as pypsrp registers, so the process-wide ElementTree registry stays consistent.
for _prefix, _uri in NS.items():
    if _prefix != "xml":
        ET.register_namespace(_prefix, _uri)

_TRANSFER = "http://schemas.xmlsoap.org/ws/2004/09/transfer/"
_SHELL = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/"
CREATE = _TRANSFER + "Create"
DELETE = _TRANSFER + "Delete"
GET = _TRANSFER + "Get"
COMMAND = _SHELL + "Command"
SEND = _SHELL + "Send"
RECEIVE = _SHELL + "Receive"
SIGNAL = _SHELL + "Signal"
FAULT_ACTION = "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault"
ANONYMOUS = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"
COMMAND_DONE = _SHELL + "CommandState/Done"
COMMAND_RUNNING = _SHELL + "CommandState/Running"
SIGNAL_TERMINATE = _SHELL + "signal/Terminate"
SIGNAL_PS_CTRL_C = "powershell/signal/ctrl_c"  # what pypsrp's PowerShell.stop() sends
CONFIG_URI = "http://schemas.microsoft.com/wbem/wsman/1/config"
POWERSHELL_URI_PREFIX = "http://schemas.microsoft.com/powershell/"

# WSMan error codes pypsrp acts on (notes, "Wire facts").
OPERATION_TIMEOUT = 2150858793  # 0x80338029: pypsrp's poll_invoke retries it
UNKNOWN_SHELL = 2150858843  # 0x8033805B: is_alive() treats it as "pool closed"
INTERNAL_ERROR = 2147500037  # 0x80004005 E_FAIL: a bug in the simulator, recorded for tests
BAD_REQUEST = 2150858817  # 0x80338041 ERROR_WSMAN_BAD_REQUEST (not found / malformed)


class WSManFault(Exception):
    """A fault to answer with (HTTP 500 + SOAP fault, as WinRM does; pypsrp parses the body)."""

    def __init__(
        self, code: int, message: str, subcode: str = "w:InternalError", sender: bool = True
    ):
        super().__init__(message)
        self.code = code
        self.message = message
        self.subcode = subcode
        self.sender = sender

    @classmethod
    def timeout(cls) -> WSManFault:
        return cls(
            OPERATION_TIMEOUT,
            "The WS-Management service cannot complete the operation within the time specified "
            "in OperationTimeout.",
            "w:TimedOut",
            sender=False,
        )

    @classmethod
    def unknown_shell(cls, shell_id: str) -> WSManFault:
        return cls(
            UNKNOWN_SHELL,
            f"The request for the Windows Remote Shell with ShellId {shell_id} failed because the "
            "shell was not found on the server. Possible causes are: the specified ShellId is "
            "incorrect or the shell no longer exists on the server. Provide the correct ShellId "
            "or create a new shell and retry the operation.",
            "w:InvalidSelectors",
        )


@dataclass
class WSManRequest:
    action: str
    message_id: str
    resource_uri: str
    shell_id: str | None  # from the ShellId selector
    operation_timeout_s: float
    max_envelope_size: int
    body: ET.Element | None  # the first child of s:Body


@dataclass
class StreamData:
    """One rsp:Stream element of a Send: raw bytes (PSRP fragments) for a target."""

    name: str
    command_id: str | None
    data: bytes


_DURATION = re.compile(r"^PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?$")


def _seconds(text: str | None, default: float) -> float:
    match = _DURATION.match((text or "").strip())
    if not match:
        return default
    hours, minutes, seconds = match.groups()
    return int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(seconds or 0)


def parse_request(raw: bytes) -> WSManRequest:
    try:
        envelope = ET.fromstring(raw)
    except ET.ParseError as exc:
        raise WSManFault(BAD_REQUEST, f"The request is not well-formed XML: {exc}") from None
    header = envelope.find("s:Header", NS)
    body = envelope.find("s:Body", NS)
    if header is None or body is None:
        raise WSManFault(BAD_REQUEST, "The SOAP envelope has no Header or Body.")

    def text(path: str) -> str:
        element = header.find(path, NS)
        return (element.text or "").strip() if element is not None else ""

    shell_id = None
    for selector in header.findall("wsman:SelectorSet/wsman:Selector", NS):
        if selector.attrib.get("Name") == "ShellId":
            shell_id = (selector.text or "").strip()
    try:
        max_envelope = int(text("wsman:MaxEnvelopeSize") or 153600)
    except ValueError:
        max_envelope = 153600
    return WSManRequest(
        action=text("wsa:Action"),
        message_id=text("wsa:MessageID"),
        resource_uri=text("wsman:ResourceURI"),
        shell_id=shell_id,
        operation_timeout_s=_seconds(text("wsman:OperationTimeout"), 60.0),
        max_envelope_size=max_envelope,
        body=body[0] if len(body) else None,
    )


def _b64(text: str | None) -> bytes:
    return base64.b64decode((text or "").encode("ascii"))


def _require(body: ET.Element | None, tag: str) -> ET.Element:
    if body is None or body.tag != f"{{{NS['rsp']}}}{tag}":
        raise WSManFault(BAD_REQUEST, f"Expected an rsp:{tag} body.")
    return body


def parse_create(body: ET.Element | None) -> tuple[str | None, bytes]:
    """Return (requested ShellId, creationXml bytes): SESSION_CAPABILITY + INIT_RUNSPACEPOOL."""
    shell = _require(body, "Shell")
    creation = shell.find("pwsh:creationXml", NS)
    return shell.attrib.get("ShellId"), _b64(creation.text if creation is not None else "")


def parse_command(body: ET.Element | None) -> tuple[str, bytes]:
    """Return (CommandId, first CREATE_PIPELINE fragment) from rsp:CommandLine."""
    line = _require(body, "CommandLine")
    command_id = line.attrib.get("CommandId") or str(uuid.uuid4()).upper()
    arguments = line.find("rsp:Arguments", NS)
    return command_id, _b64(arguments.text if arguments is not None else "")


def parse_send(body: ET.Element | None) -> list[StreamData]:
    send = _require(body, "Send")
    return [
        StreamData(s.attrib.get("Name", "stdin"), s.attrib.get("CommandId"), _b64(s.text))
        for s in send.findall("rsp:Stream", NS)
    ]


def parse_receive(body: ET.Element | None) -> str | None:
    """Return the CommandId the Receive targets, or None for the pool itself."""
    receive = _require(body, "Receive")
    desired = receive.find("rsp:DesiredStream", NS)
    return desired.attrib.get("CommandId") if desired is not None else None


def parse_signal(body: ET.Element | None) -> tuple[str | None, str]:
    signal = _require(body, "Signal")
    code = signal.find("rsp:Code", NS)
    return signal.attrib.get("CommandId"), (code.text or "").strip() if code is not None else ""


def _q(prefix: str, name: str) -> str:
    return f"{{{NS[prefix]}}}{name}"


def _envelope(action: str, relates_to: str) -> tuple[ET.Element, ET.Element]:
    envelope = ET.Element(_q("s", "Envelope"))
    header = ET.SubElement(envelope, _q("s", "Header"))
    ET.SubElement(header, _q("wsa", "To")).text = ANONYMOUS
    ET.SubElement(header, _q("wsa", "Action"), {_q("s", "mustUnderstand"): "true"}).text = action
    ET.SubElement(header, _q("wsa", "MessageID")).text = f"uuid:{str(uuid.uuid4()).upper()}"
    # pypsrp raises WinRMError unless RelatesTo equals its MessageID (notes, "Wire facts").
    ET.SubElement(header, _q("wsa", "RelatesTo")).text = relates_to
    body = ET.SubElement(envelope, _q("s", "Body"))
    return envelope, body


def _serialize(envelope: ET.Element) -> bytes:
    data: bytes = ET.tostring(envelope, encoding="utf-8", xml_declaration=False)
    return data


def reply(request: WSManRequest, *children: ET.Element) -> bytes:
    """A success reply: action = request action + "Response"."""
    envelope, body = _envelope(request.action + "Response", request.message_id)
    body.extend(children)
    return _serialize(envelope)


def fault(request_message_id: str, error: WSManFault, machine: str = "localhost") -> bytes:
    envelope, body = _envelope(FAULT_ACTION, request_message_id)
    fault_el = ET.SubElement(body, _q("s", "Fault"))
    code = ET.SubElement(fault_el, _q("s", "Code"))
    ET.SubElement(code, _q("s", "Value")).text = "s:Sender" if error.sender else "s:Receiver"
    ET.SubElement(ET.SubElement(code, _q("s", "Subcode")), _q("s", "Value")).text = error.subcode
    reason = ET.SubElement(fault_el, _q("s", "Reason"))
    ET.SubElement(reason, _q("s", "Text"), {_q("xml", "lang"): "en-US"}).text = error.message
    detail = ET.SubElement(fault_el, _q("s", "Detail"))
    wsman_fault = ET.SubElement(
        detail, _q("wsmanfault", "WSManFault"), {"Code": str(error.code), "Machine": machine}
    )
    ET.SubElement(wsman_fault, _q("wsmanfault", "Message")).text = error.message
    return _serialize(envelope)


def shell_element(info: dict[str, str]) -> ET.Element:
    """rsp:Shell with one child per field (Create and Get replies; pypsrp reads them by name)."""
    shell = ET.Element(_q("rsp", "Shell"))
    for name, value in info.items():
        ET.SubElement(shell, _q("rsp", name)).text = value
    return shell


def create_reply(request: WSManRequest, address: str, shell_id: str, info: dict[str, str]) -> bytes:
    # pypsrp reads the ShellId from ResourceCreated/ReferenceParameters/SelectorSet (notes).
    created = ET.Element(_q("wst", "ResourceCreated"))
    ET.SubElement(created, _q("wsa", "Address")).text = address
    params = ET.SubElement(created, _q("wsa", "ReferenceParameters"))
    ET.SubElement(params, _q("wsman", "ResourceURI")).text = request.resource_uri
    selectors = ET.SubElement(params, _q("wsman", "SelectorSet"))
    ET.SubElement(selectors, _q("wsman", "Selector"), {"Name": "ShellId"}).text = shell_id
    return reply(request, created, shell_element(info))


def command_reply(request: WSManRequest, command_id: str) -> bytes:
    response = ET.Element(_q("rsp", "CommandResponse"))
    ET.SubElement(response, _q("rsp", "CommandId")).text = command_id
    return reply(request, response)


def receive_reply(
    request: WSManRequest, command_id: str | None, chunks: list[bytes], done: bool
) -> bytes:
    response = ET.Element(_q("rsp", "ReceiveResponse"))
    target = {"CommandId": command_id} if command_id else {}
    for chunk in chunks:
        stream = ET.SubElement(response, _q("rsp", "Stream"), {"Name": "stdout", **target})
        stream.text = base64.b64encode(chunk).decode("ascii")
    if command_id:
        state = COMMAND_DONE if done else COMMAND_RUNNING
        ET.SubElement(
            response, _q("rsp", "CommandState"), {"CommandId": command_id, "State": state}
        )
    return reply(request, response)


def empty_reply(request: WSManRequest, tag: str | None = None) -> bytes:
    """Send, Signal and Delete replies (rsp:SendResponse, rsp:SignalResponse, empty body)."""
    return reply(request, ET.Element(_q("rsp", tag))) if tag else reply(request)


def config_reply(request: WSManRequest, max_envelope_kb: int) -> bytes:
    """Get on the WinRM config resource (pypsrp's update_max_payload_size reads this field)."""
    config = ET.Element(_q("cfg", "Config"))
    ET.SubElement(config, _q("cfg", "MaxEnvelopeSizekb")).text = str(max_envelope_kb)
    return reply(request, config)


def payload_budget(max_envelope_size: int) -> int:
    """Raw bytes that fit base64-encoded in one reply under the client's MaxEnvelopeSize."""
    return max(4096, (max_envelope_size - 4096) // 4 * 3)
