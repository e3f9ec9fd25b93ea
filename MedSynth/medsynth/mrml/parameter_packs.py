"""A library parameter dataclass as a Slicer ``@parameterPack``, so a module's parameter node holds it.

The library declares each job's parameters once (``medsynth.parameters``), with its own
``Range`` / ``OneOf`` markers because it cannot import Slicer. A module turns the class into a
parameterPack with Slicer's ``WithinRange`` / ``Choice`` at load time::

    DRRPack = slicer_parameter_pack(DRRParameters)

    @parameterNodeWrapper
    class DRRProjectionParameterNode:
        ctVolume: vtkMRMLScalarVolumeNode
        drr: DRRPack                      # .ui binds "drr.pose.primary_angle", "drr.kv", ...

and hands the library a plain copy: ``to_parameters(parameterNode.drr)``. Only the Slicer
application has ``slicer.parameterNodeWrapper``; it is imported when a pack is made.
"""

from __future__ import annotations

import dataclasses
import typing
from functools import lru_cache

from medsynth.parameters import OneOf, Range, assign, from_object

#: The library class each pack was made from (pack class -> dataclass).
_LIBRARY_CLASS: dict[type, type] = {}


@lru_cache(maxsize=None)
def slicer_parameter_pack(cls: type) -> type:
    """The ``@parameterPack`` class of a parameter dataclass (made once per class; nested ones too)."""
    from slicer.parameterNodeWrapper import Choice, WithinRange, parameterPack

    hints = typing.get_type_hints(cls, include_extras=True)
    annotations: dict[str, object] = {}
    namespace: dict[str, object] = {"__doc__": cls.__doc__, "__module__": cls.__module__}
    for field in dataclasses.fields(cls):
        base, metadata = hints[field.name], ()
        if typing.get_origin(base) is typing.Annotated:
            base, metadata = base.__origin__, tuple(base.__metadata__)
        if dataclasses.is_dataclass(base):
            annotations[field.name] = slicer_parameter_pack(base)  # defaults: the nested pack's own
            continue
        slicer_metadata = [WithinRange(m.minimum, m.maximum) for m in metadata if isinstance(m, Range)]
        slicer_metadata += [Choice(list(m.choices)) for m in metadata if isinstance(m, OneOf)]
        annotations[field.name] = typing.Annotated[(base, *slicer_metadata)] if slicer_metadata else base
        namespace[field.name] = field.default
    namespace["__annotations__"] = annotations
    pack = parameterPack(type(f"{cls.__name__}Pack", (), namespace))
    _LIBRARY_CLASS[pack] = cls
    return pack


def library_class(pack_or_instance) -> type:
    """The library dataclass a pack (class or instance, observed by a parameter node or not) stands for."""
    kind = pack_or_instance if isinstance(pack_or_instance, type) else type(pack_or_instance)
    for candidate in kind.__mro__:
        if candidate in _LIBRARY_CLASS:
            return _LIBRARY_CLASS[candidate]
    raise TypeError(f"{kind.__name__} was not made by slicer_parameter_pack")


def to_parameters(pack):
    """A plain library parameter object with the values of a pack (e.g. ``parameterNode.drr``)."""
    return from_object(library_class(pack), pack)


def store_parameters(pack, parameters) -> None:
    """Write a library parameter object into a pack held by a parameter node (only changed fields)."""
    assign(pack, parameters)
