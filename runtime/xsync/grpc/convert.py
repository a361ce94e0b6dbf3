"""Store records (plain dicts) to protobuf messages and back, driven by the message descriptors.

Presence is what carries None across the wire: every scalar is a proto3 `optional`, so an
unset field reads back as None and a field set to 0, "" or False keeps its value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

# Descriptors are typed as FieldDescriptor or upb's own class depending on the backend,
# so helpers take `Any` and read only the attributes both have.
from ..store.base import InvalidArgument, Record

_INT_TYPES = frozenset(
    {
        FieldDescriptor.TYPE_INT32,
        FieldDescriptor.TYPE_INT64,
        FieldDescriptor.TYPE_UINT32,
        FieldDescriptor.TYPE_UINT64,
        FieldDescriptor.TYPE_SINT32,
        FieldDescriptor.TYPE_SINT64,
        FieldDescriptor.TYPE_FIXED32,
        FieldDescriptor.TYPE_FIXED64,
        FieldDescriptor.TYPE_SFIXED32,
        FieldDescriptor.TYPE_SFIXED64,
    }
)
_FLOAT_TYPES = frozenset({FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT})


def _is_repeated(fd: Any) -> bool:
    return bool(fd.is_repeated)


def fill_message(
    message: Message, model: str, values: Mapping[str, Any], *, skip_unknown: bool
) -> Message:
    """Set `values` on `message`; None leaves a field unset.

    With `skip_unknown` (a record coming out of the store) keys the message lacks are ignored;
    otherwise (values from a caller) they are an `InvalidArgument` naming the field, as are
    values of the wrong type.
    """
    fields = message.DESCRIPTOR.fields_by_name
    for key, value in values.items():
        fd = fields.get(key)
        if fd is None:
            if skip_unknown:
                continue
            raise InvalidArgument(f"{model} has no field {key!r}")
        if value is None:
            continue
        if _is_repeated(fd):
            _set_repeated(message, model, fd, value)
        else:
            _check_scalar(model, fd, value)
            try:
                setattr(message, key, value)
            except (TypeError, ValueError) as exc:
                raise InvalidArgument(
                    f"{model}.{key}: {value!r:.60} does not fit ({exc})"
                ) from None
    return message


def _set_repeated(message: Message, model: str, fd: Any, value: Any) -> None:
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple, set, frozenset)):
        raise InvalidArgument(f"{model}.{fd.name} must be a list of ids, got {value!r:.60}")
    items = sorted(value) if isinstance(value, (set, frozenset)) else list(value)
    for item in items:
        if isinstance(item, bool) or not isinstance(item, int):
            raise InvalidArgument(f"{model}.{fd.name} must hold integer ids, got {item!r:.60}")
    try:
        getattr(message, fd.name).extend(items)
    except (TypeError, ValueError) as exc:
        raise InvalidArgument(f"{model}.{fd.name}: {exc}") from None


def _check_scalar(model: str, fd: Any, value: Any) -> None:
    # protobuf accepts True for an int and 1 for a bool; the store does not, so neither do we.
    kind = fd.type
    if kind == FieldDescriptor.TYPE_BOOL:
        ok, expected = isinstance(value, bool), "a bool"
    elif kind in _INT_TYPES:
        ok, expected = isinstance(value, int) and not isinstance(value, bool), "an integer"
    elif kind in _FLOAT_TYPES:
        ok, expected = isinstance(value, (int, float)) and not isinstance(value, bool), "a number"
    elif kind == FieldDescriptor.TYPE_STRING:
        ok, expected = isinstance(value, str), "a string"
    else:
        ok, expected = True, ""
    if not ok:
        raise InvalidArgument(
            f"{model}.{fd.name} must be {expected}, got {type(value).__name__} {value!r:.60}"
        )


@dataclass(frozen=True, slots=True)
class _Shape:
    """What the converters need to know about one message class, worked out once."""

    names: frozenset[str]
    # Every field as an unset one reads: None (optional scalar), [] (repeated), the default.
    unset: dict[str, Any]
    repeated: frozenset[str]
    # Whether fields are declared in number order, the order `ListFields` reports them in.
    in_number_order: bool


_SHAPES: dict[type[Message], _Shape] = {}


def _shape(message_class: type[Message]) -> _Shape:
    found = _SHAPES.get(message_class)
    if found is None:
        fields: list[Any] = list(message_class.DESCRIPTOR.fields)
        unset: dict[str, Any] = {}
        for fd in fields:
            if _is_repeated(fd):
                unset[fd.name] = []
            elif fd.has_presence:
                unset[fd.name] = None
            else:
                unset[fd.name] = fd.default_value
        numbers = [fd.number for fd in fields]
        found = _SHAPES[message_class] = _Shape(
            names=frozenset(unset),
            unset=unset,
            repeated=frozenset(fd.name for fd in fields if _is_repeated(fd)),
            in_number_order=numbers == sorted(numbers),
        )
    return found


def _set_fields(message: Message) -> list[tuple[Any, Any]]:
    """(descriptor, value) of every field that is set, in declaration order."""
    listed: list[tuple[Any, Any]] = list(message.ListFields())
    if not _shape(type(message)).in_number_order:
        listed.sort(key=lambda item: item[0].index)
    return listed


def read_record(message: Message, *, skip: Iterable[str] = ()) -> Record:
    """Every field of `message` as a record: unset optionals as None, repeated fields as lists."""
    shape = _shape(type(message))
    record = shape.unset.copy()
    for name in shape.repeated:
        record[name] = []  # a fresh list per record, not the shared template's
    # `ListFields` (implemented in C) lists exactly the fields that are set: optional ones
    # set to any value, non-empty repeated ones, plain scalars that differ from the default.
    for fd, value in message.ListFields():
        record[fd.name] = list(value) if fd.name in shape.repeated else value
    for name in skip:
        record.pop(name, None)
    return record


def record_message(message_class: type[Message], model: str, record: Mapping[str, Any]) -> Any:
    """A new `message_class` holding a store record (keys the message lacks are ignored)."""
    kwargs = _record_kwargs(message_class, record)
    try:
        return message_class(**kwargs)
    except (TypeError, ValueError):
        # Only a value of the wrong type gets here: let the checking path name the field.
        return fill_message(message_class(), model, record, skip_unknown=True)


def add_record(
    container: Any, message_class: type[Message], model: str, record: Mapping[str, Any]
) -> None:
    """Append a store record to a repeated message field (`container`) of `message_class`s."""
    kwargs = _record_kwargs(message_class, record)
    try:
        container.add(**kwargs)
    except (TypeError, ValueError):
        container.append(fill_message(message_class(), model, record, skip_unknown=True))


def _record_kwargs(message_class: type[Message], record: Mapping[str, Any]) -> dict[str, Any]:
    names = _shape(message_class).names
    return {k: v for k, v in record.items() if v is not None and k in names}


def written_values(message: Message, model: str, names: Sequence[str] = ()) -> dict[str, Any]:
    """The values a write request carries.

    With `names`, exactly those fields (an unset one is None, so a caller can clear a field);
    without, every field that is set, every non-empty list, and `id` only when non-zero.
    """
    fields = message.DESCRIPTOR.fields_by_name
    values: dict[str, Any] = {}
    if names:
        for name in names:
            fd = fields.get(name)
            if fd is None:
                raise InvalidArgument(f"{model} has no field {name!r}")
            values[name] = _value(message, fd)
        return values
    # What `ListFields` lists is exactly "set, non-empty, or non-zero" (see `read_record`).
    for fd, value in _set_fields(message):
        values[fd.name] = list(value) if _is_repeated(fd) else value
    return values


def _value(message: Message, fd: Any) -> Any:
    if _is_repeated(fd):
        return list(getattr(message, fd.name))
    if fd.has_presence and not message.HasField(fd.name):
        return None
    return getattr(message, fd.name)
