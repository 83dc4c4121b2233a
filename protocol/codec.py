"""Frame codecs: msgpack for the store link, JSON for browsers.

``decode`` returns a validated model or raises ``ProtocolError`` with the close code to
answer with — never ``None`` and never a half-valid object:

- over the size limit → 1009;
- bytes that are not msgpack / JSON / UTF-8, or not an object → 1007;
- a well-formed object that is not a valid message (unknown ``type``, unknown or missing
  field, wrong value) → 1008.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any, TypeVar

import msgpack
from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_core import PydanticUndefined, to_json

from protocol.close_codes import CloseCode
from protocol.errors import ProtocolError, truncate_reason

#: Default frame limit (DESIGN.md §5.3); servers may configure another.
MAX_FRAME_BYTES = 64 * 1024

T = TypeVar("T")

# What msgpack.unpackb raises on hostile input: ValueError (incl. ExtraData, FormatError,
# StackError, truncated data), TypeError (unhashable map keys), UnpackException (OutOfData).
_MSGPACK_ERRORS = (ValueError, TypeError, OverflowError, msgpack.UnpackException)


def encode_msgpack(message: BaseModel) -> bytes:
    """A message as one msgpack frame (times as ISO 8601 strings)."""
    return msgpack.packb(message.model_dump(mode="json"), use_bin_type=True)


def encode_json(message: BaseModel) -> str:
    """A message as one JSON text frame."""
    return message.model_dump_json()


def json_with(model: type[BaseModel], embed: Mapping[str, str], /, **values: Any) -> str:
    """The JSON text ``model(**fields).model_dump_json()`` gives, where the fields in
    ``embed`` come as JSON text already (a job or ticket serialised once, for its stream
    entry, goes into its record and frames as is) and the rest as values. Defaults fill
    what neither names. The layout is the model's: a field it does not have, or a required
    one missing, is a ``TypeError`` (no hand-written JSON that must track a model)."""
    parts = []
    used = 0
    for name, key, default in _layout(model):
        if name in embed:
            text = embed[name]
            used += 1
        elif name in values:
            text = to_json(values[name]).decode()
            used += 1
        elif default is None:
            raise TypeError(f"{model.__name__}.{name} is required")
        else:
            text = default
        parts.append(key + text)
    if used != len(embed) + len(values):
        known = {name for name, _, _ in _layout(model)}
        odd = sorted((embed.keys() - known) | (values.keys() - known) or embed.keys() & values)
        raise TypeError(f"{model.__name__}: unknown or repeated fields {', '.join(odd)}")
    return "{" + ",".join(parts) + "}"


@cache
def _layout(model: type[BaseModel]) -> tuple[tuple[str, str, str | None], ...]:
    """Per field, in order: its name, ``"key":`` and its default's JSON (None: required)."""
    out = []
    for name, field in model.model_fields.items():
        key = field.serialization_alias or field.alias or name
        if field.default is not PydanticUndefined:
            default: str | None = to_json(field.default).decode()
        elif field.default_factory is not None:
            default = to_json(field.default_factory()).decode()  # type: ignore[call-arg]
        else:
            default = None
        out.append((name, to_json(key).decode() + ":", default))
    return tuple(out)


def decode_msgpack(data: bytes, adapter: TypeAdapter[T], max_size: int = MAX_FRAME_BYTES) -> T:
    """Validate a msgpack frame against a channel's union."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ProtocolError(CloseCode.UNDECODABLE, "expected a binary msgpack frame")
    _check_size(len(data), max_size)
    try:
        obj = msgpack.unpackb(data, raw=False, strict_map_key=True)
    except _MSGPACK_ERRORS as exc:
        raise ProtocolError(CloseCode.UNDECODABLE, f"not msgpack: {exc}") from None
    return _validate(obj, adapter)


def decode_json(data: str | bytes, adapter: TypeAdapter[T], max_size: int = MAX_FRAME_BYTES) -> T:
    """Validate a JSON frame against a channel's union."""
    if isinstance(data, str):
        _check_size(len(data), max_size)  # characters <= bytes; re-checked below
        try:
            raw = data.encode("utf-8")
        except UnicodeEncodeError:
            raise ProtocolError(CloseCode.UNDECODABLE, "text frame is not valid UTF-8") from None
    elif isinstance(data, bytes | bytearray | memoryview):
        raw = bytes(data)
    else:
        raise ProtocolError(CloseCode.UNDECODABLE, "expected a JSON frame")
    _check_size(len(raw), max_size)
    try:
        obj = _json_loads(raw)
    except ValueError as exc:
        raise ProtocolError(CloseCode.UNDECODABLE, f"not JSON: {exc}") from None
    return _validate(obj, adapter)


def _json_loads(raw: bytes) -> Any:
    import json

    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError("not valid UTF-8") from exc
    try:
        return json.loads(text)
    except RecursionError as exc:
        raise ValueError("nested too deeply") from exc


def _check_size(size: int, max_size: int) -> None:
    if size > max_size:
        raise ProtocolError(CloseCode.TOO_BIG, f"frame of {size} bytes is over {max_size}")


def _validate(obj: Any, adapter: TypeAdapter[T]) -> T:
    if not isinstance(obj, dict):
        raise ProtocolError(CloseCode.UNDECODABLE, "a message must be an object with a 'type'")
    try:
        return adapter.validate_python(obj)
    except ValidationError as exc:
        raise ProtocolError(CloseCode.POLICY, describe(exc)) from None
    except RecursionError:
        raise ProtocolError(CloseCode.UNDECODABLE, "nested too deeply") from None


def describe(exc: ValidationError, limit: int = 3) -> str:
    """One short readable line: ``field.path: message; …`` (fits a close reason)."""
    parts = []
    for err in exc.errors()[:limit]:
        path = ".".join(str(p) for p in err["loc"]) or "(message)"
        parts.append(f"{path}: {err['msg']}")
    more = exc.error_count() - limit
    text = "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")
    return truncate_reason(text)


__all__ = [
    "MAX_FRAME_BYTES",
    "decode_json",
    "decode_msgpack",
    "describe",
    "encode_json",
    "encode_msgpack",
    "json_with",
    "truncate_reason",
]
