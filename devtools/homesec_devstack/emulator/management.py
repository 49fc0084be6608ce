"""``$cbs`` put-token and ``$management`` READ request handling."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import urllib.parse
from typing import Any

from azure.eventhub._pyamqp.message import Message, Properties

from homesec_devstack.emulator import codec
from homesec_devstack.emulator.broker import Broker


def _get(props: dict[Any, Any] | None, key: str) -> Any:
    if not props:
        return None
    value = props.get(key.encode(), props.get(key))
    return value.decode() if isinstance(value, bytes) else value


def reply_payload(request: Message, status: int, description: str, value: Any = None) -> bytes:
    msg = Message(
        properties=Properties(correlation_id=request.properties.message_id if request.properties else None),  # type: ignore[arg-type]
        application_properties={"status-code": status, "status-description": description},
        value=value,
    )
    out = bytearray()
    codec.encode_payload(out, msg)
    return bytes(out)


def check_sas_token(token: str, keys: dict[str, str], now: float | None = None) -> str | None:
    """Validate a ``SharedAccessSignature`` token against the configured keys; return an error or ``None``."""
    if not token.startswith("SharedAccessSignature "):
        return "not a SharedAccessSignature token"
    fields = dict(urllib.parse.parse_qsl(token[len("SharedAccessSignature ") :], keep_blank_values=True))
    name, sig, expiry, resource = fields.get("skn"), fields.get("sig"), fields.get("se"), fields.get("sr")
    if not (name and sig and expiry and resource):
        return "token lacks sr, sig, se or skn"
    key = keys.get(name)
    if key is None:
        return f"unknown key name {name!r}"
    if int(expiry) < (now if now is not None else time.time()):
        return "token expired"
    to_sign = f"{urllib.parse.quote_plus(resource)}\n{expiry}".encode()
    expected = base64.b64encode(hmac.new(key.encode(), to_sign, hashlib.sha256).digest()).decode()
    if not hmac.compare_digest(expected, sig):
        return "signature does not match"
    return None


def audience_hub(audience: str) -> str | None:
    """The hub a put-token audience names (``sb://<host>/<hub>[/...]``), or ``None`` for the namespace."""
    path = urllib.parse.urlparse(audience).path if "://" in audience else audience.partition("/")[2]
    return path.strip("/").split("/")[0] or None


def handle_cbs(request: Message, sas_keys: dict[str, str] | None, broker: Broker) -> tuple[bytes, bool]:
    """Answer a put-token request; returns the reply and whether the token was accepted.

    As Event Hubs: a token for a hub that does not exist is refused with 404 (the SDK raises
    ``AuthenticationError``), a token that fails ``--check-sas`` with 401, anything else is accepted (202).
    """
    props = request.application_properties or {}
    if _get(props, "operation") != "put-token":
        return reply_payload(request, 400, "unsupported CBS operation"), False
    audience = str(_get(props, "name") or "")
    hub = audience_hub(audience)
    if hub is not None and broker.hub(hub) is None:
        return reply_payload(request, 404, f"The messaging entity '{audience}' could not be found."), False
    token_type = _get(props, "type")
    body: Any = request.value if request.value is not None else next(iter(request.data or [b""]))
    token = body.decode() if isinstance(body, bytes) else str(body)
    if sas_keys is not None:
        if token_type != "servicebus.windows.net:sastoken":  # noqa: S105 - a token type name
            return reply_payload(
                request, 401, f"token type {token_type!r} not accepted in --check-sas mode"
            ), False
        error = check_sas_token(token, sas_keys)
        if error is not None:
            return reply_payload(request, 401, f"InvalidSignature: {error}"), False
    return reply_payload(request, 202, "Accepted"), True


def handle_management(request: Message, broker: Broker) -> bytes:
    props = request.application_properties or {}
    operation, kind, name = _get(props, "operation"), _get(props, "type"), _get(props, "name")
    if operation != "READ":
        return reply_payload(request, 400, f"unsupported operation {operation!r}")
    hub = broker.hub(name or "")
    if hub is None:
        return reply_payload(request, 404, f"The messaging entity '{name}' could not be found.")
    if kind == "com.microsoft:eventhub":
        info = {"name": hub.name, "type": kind, "created_at": codec.typed("timestamp", hub.created_ms),
                "partition_count": len(hub.partition_ids), "partition_ids": hub.partition_ids}  # fmt: skip
        return reply_payload(request, 200, "OK", info)
    if kind == "com.microsoft:partition":
        pid = _get(props, "partition")
        part = hub.partitions.get(str(pid))
        if part is None:
            return reply_payload(request, 404, f"partition {pid!r} not found")
        events = part.log.events
        last = events[-1] if events else None
        info = {
            "name": hub.name, "type": kind, "partition": part.pid,
            "begin_sequence_number": codec.typed("long", events[0].sequence_number if events else 0),
            "last_enqueued_sequence_number": codec.typed("long", last.sequence_number if last else -1),
            "last_enqueued_offset": str(last.offset) if last else "-1",
            "last_enqueued_time_utc": codec.typed("timestamp", last.enqueued_ms if last else 0),
            "is_partition_empty": last is None,
        }  # fmt: skip
        return reply_payload(request, 200, "OK", info)
    return reply_payload(request, 400, f"unsupported type {kind!r}")
