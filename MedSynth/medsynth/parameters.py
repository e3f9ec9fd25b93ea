"""One parameter object per job: plain dataclasses that every front door shares.

A job's parameters (``DRRParameters``, ``TumorParameters``, ``SemanticParameters``) are defined
once, as a dataclass whose fields carry their limits in ``Annotated`` metadata::

    primary_angle: Annotated[float, Range(-190.0, 190.0), "LAO + / RAO -, degrees"] = 0.0

The same class is the Slicer module's parameter node (``medsynth.mrml.parameter_packs`` turns it
into a ``@parameterPack`` with Slicer's ``WithinRange`` / ``Choice``), the CLI's and the batch
scripts' options, a dataset recipe's section (``json_schema``, ``from_dict`` with errors naming
the bad key) and the web app's controls (``describe_fields``). Field types are kept to what
Slicer's parameter node stores: bool, int, float, str and nested parameter dataclasses.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass
from typing import Any, Mapping, TypeVar

from medsynth.errors import InputError

T = TypeVar("T")


@dataclass(frozen=True)
class Range:
    """Inclusive numeric limits of a field (Slicer: ``WithinRange``)."""

    minimum: float
    maximum: float


@dataclass(frozen=True)
class OneOf:
    """The values a text field may take (Slicer: ``Choice``)."""

    choices: tuple[str, ...]

    def __init__(self, choices) -> None:
        object.__setattr__(self, "choices", tuple(str(c) for c in choices))


@dataclass(frozen=True)
class FieldInfo:
    """What a front door needs to show or parse one field."""

    name: str  # dotted for nested parameters: "pose.primary_angle"
    type: type
    default: Any
    range: Range | None = None
    choices: tuple[str, ...] | None = None
    help: str = ""


SCALAR_TYPES = (bool, int, float, str)


def _split(annotation) -> tuple[Any, tuple]:
    """(base type, metadata) of an ``Annotated[...]`` type; metadata is () otherwise."""
    if typing.get_origin(annotation) is typing.Annotated:
        return annotation.__origin__, tuple(annotation.__metadata__)
    return annotation, ()


def _hints(cls) -> dict:
    return typing.get_type_hints(cls, include_extras=True)


def describe_fields(cls, prefix: str = "") -> list[FieldInfo]:
    """Every scalar field of a parameter class (nested classes flattened to dotted names)."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"{cls!r} is not a parameter dataclass")
    hints = _hints(cls)
    infos: list[FieldInfo] = []
    for field in dataclasses.fields(cls):
        base, metadata = _split(hints[field.name])
        name = prefix + field.name
        if dataclasses.is_dataclass(base):
            infos += describe_fields(base, name + ".")
            continue
        if base not in SCALAR_TYPES:
            raise TypeError(f"{cls.__name__}.{field.name}: parameter fields are bool, int, float, str or nested "
                            f"parameter classes, not {base!r}")
        infos.append(FieldInfo(
            name=name, type=base, default=field.default,
            range=next((m for m in metadata if isinstance(m, Range)), None),
            choices=next((m.choices for m in metadata if isinstance(m, OneOf)), None),
            help=next((m for m in metadata if isinstance(m, str)), ""),
        ))
    return infos


def _field_error(where: str, name: str, message: str) -> InputError:
    return InputError(f"{where}: {name} {message}")


def _coerce(info: FieldInfo, value, where: str):
    """``value`` as the field's type, within its limits, or an error naming the field and the fix."""
    kind = info.type
    if kind is bool:
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
            value = value.lower() in ("true", "yes", "1")
        if not isinstance(value, bool):
            raise _field_error(where, info.name, f"must be true or false, got {value!r}.")
    elif kind in (int, float):
        if isinstance(value, bool):
            raise _field_error(where, info.name, f"must be a number, got {value!r}.")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise _field_error(where, info.name, f"must be a number, got {value!r}.") from None
        if not math.isfinite(number):
            raise _field_error(where, info.name, f"must be a finite number, got {value!r}.")
        if kind is int:
            if number != int(number):
                raise _field_error(where, info.name, f"must be a whole number, got {value!r}.")
            number = int(number)
        value = number
        if info.range is not None and not info.range.minimum <= value <= info.range.maximum:
            raise _field_error(where, info.name, f"is {value:g}; use a value from {info.range.minimum:g} to "
                                                 f"{info.range.maximum:g}.")
    else:
        value = str(value)
        if info.choices is not None and value not in info.choices:
            raise _field_error(where, info.name, f"is {value!r}; choose one of: {', '.join(info.choices)}.")
    return value


def validate(parameters, where: str | None = None) -> None:
    """Check every field against its type and limits; the error names the field and the allowed values."""
    where = where or type(parameters).__name__
    for info in describe_fields(type(parameters)):
        _coerce(info, get_value(parameters, info.name), where)


def get_value(parameters, name: str):
    """A (dotted) field's value: ``get_value(p, "pose.sid")``."""
    for part in name.split("."):
        parameters = getattr(parameters, part)
    return parameters


def to_dict(parameters, cls=None) -> dict:
    """Nested plain dict of a parameter object (also of a Slicer parameterPack built from ``cls``)."""
    cls = cls or type(parameters)
    hints = _hints(cls)
    result = {}
    for field in dataclasses.fields(cls):
        value = getattr(parameters, field.name)
        base, _ = _split(hints[field.name])
        result[field.name] = to_dict(value, base) if dataclasses.is_dataclass(base) else value
    return result


def from_dict(cls: type[T], data: Mapping | None, where: str | None = None) -> T:
    """A parameter object from a (partial) nested dict: missing fields keep their defaults.

    Unknown keys, wrong types and values out of range raise InputError naming the key and the fix,
    prefixed with ``where`` (e.g. "recipe drr"), so a recipe or a web form can point at the mistake.
    """
    where = where or cls.__name__
    data = {} if data is None else data
    if not isinstance(data, Mapping):
        raise InputError(f"{where}: expected a mapping of parameter names to values, got {type(data).__name__}.")
    hints = _hints(cls)
    fields = {field.name: field for field in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise InputError(f"{where}: unknown parameter {unknown[0]!r}. Known parameters: {', '.join(fields)}.")
    infos = {info.name: info for info in describe_fields(cls)}
    values = {}
    for name, value in data.items():
        base, _ = _split(hints[name])
        if dataclasses.is_dataclass(base):
            values[name] = value if isinstance(value, base) else from_dict(base, value, f"{where}.{name}")
        else:
            values[name] = _coerce(infos[name], value, where)
    return cls(**values)


def from_object(cls: type[T], source) -> T:
    """A plain ``cls`` with the values of any object that has the same fields (e.g. a Slicer parameterPack)."""
    return from_dict(cls, to_dict(source, cls))


def assign(target, source, cls=None) -> None:
    """Write every field of ``source`` into ``target`` (a parameterPack in a parameter node, say)."""
    cls = cls or type(source)
    hints = _hints(cls)
    for field in dataclasses.fields(cls):
        base, _ = _split(hints[field.name])
        value = getattr(source, field.name)
        if dataclasses.is_dataclass(base):
            assign(getattr(target, field.name), value, base)
        elif getattr(target, field.name) != value:
            setattr(target, field.name, value)


def updated(parameters: T, changes: Mapping[str, Any], where: str | None = None) -> T:
    """A copy with dotted fields changed and checked: ``updated(p, {"pose.sid": 900})``."""
    data = to_dict(parameters)
    for name, value in changes.items():
        node = data
        parts = name.split(".")
        for part in parts[:-1]:
            if not isinstance(node.get(part), dict):
                raise InputError(f"{where or type(parameters).__name__}: unknown parameter {name!r}.")
            node = node[part]
        node[parts[-1]] = value
    return from_dict(type(parameters), data, where)


def json_schema(cls) -> dict:
    """A JSON schema (draft 2020-12) of the parameter class, for recipes and API documents."""
    hints = _hints(cls)
    properties = {}
    for field in dataclasses.fields(cls):
        base, metadata = _split(hints[field.name])
        if dataclasses.is_dataclass(base):
            properties[field.name] = json_schema(base)
            continue
        schema: dict = {"type": {bool: "boolean", int: "integer", float: "number", str: "string"}[base],
                        "default": field.default}
        for item in metadata:
            if isinstance(item, Range):
                schema.update(minimum=item.minimum, maximum=item.maximum)
            elif isinstance(item, OneOf):
                schema["enum"] = list(item.choices)
            elif isinstance(item, str):
                schema["description"] = item
        properties[field.name] = schema
    return {"type": "object", "description": (cls.__doc__ or "").strip().split("\n")[0],
            "properties": properties, "additionalProperties": False}
