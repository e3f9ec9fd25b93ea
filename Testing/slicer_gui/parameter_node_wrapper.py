"""``slicer.parameterNodeWrapper`` stand-in, on slicer-core's real vtkMRMLScriptedModuleNode.

It models the behaviour of Slicer's wrapper that decides whether a module works (read from
Slicer's Base/Python/slicer/parameterNodeWrapper, 2026-12), and is stricter where Slicer only
warns:
- member types: bool, int, float, str, vtkMRML*Node classes (or a Union of them), parameterPacks;
  anything else raises, and so does an annotation no serializer or validator uses;
- defaults come from the class attribute, else the type's default, and must pass the validators;
- values are stored as strings under the member's (dotted) name, node references by ID;
  a pack read from the node writes its changes back (Slicer's observed parameterPack);
- ``getNodeTypes`` instantiates each node class to get its class name (abstract classes raise
  TypeError in Slicer: the failure behind an unusable panel);
- ``bindable`` says which widget classes Slicer's GUI connectors bind to a member type.
"""

from __future__ import annotations

import typing

import slicer


# --- validators -----------------------------------------------------------------------------------
class Validator:
    def validate(self, value) -> None:
        raise NotImplementedError


class WithinRange(Validator):
    def __init__(self, minimum, maximum) -> None:
        self.minimum, self.maximum = minimum, maximum

    def validate(self, value) -> None:
        if not self.minimum <= value <= self.maximum:
            raise ValueError(f"Value {value} is not within range [{self.minimum}, {self.maximum}]")


class Choice(Validator):
    def __init__(self, choices) -> None:
        self.choices = list(choices)

    def validate(self, value) -> None:
        if value not in self.choices:
            raise ValueError(f"Value {value!r} is not one of {self.choices}")


class Default:
    def __init__(self, value) -> None:
        self.value = value


# --- types ------------------------------------------------------------------------------------------
def split_annotations(annotated) -> tuple[object, list]:
    if typing.get_origin(annotated) is typing.Annotated:
        return annotated.__origin__, list(annotated.__metadata__)
    return annotated, []


def node_classes(datatype) -> tuple | None:
    """The node classes a member may hold (a node class, or a Union/Optional of them), else None."""
    base, _ = split_annotations(datatype)
    if isinstance(base, type) and issubclass(base, slicer.vtkMRMLNode):
        return (base,)
    if typing.get_origin(base) is typing.Union:
        classes = tuple(arg for arg in typing.get_args(base) if arg is not type(None))
        if classes and all(isinstance(c, type) and issubclass(c, slicer.vtkMRMLNode) for c in classes):
            return classes
    return None


def getNodeTypes(datatype) -> tuple[str, ...]:  # noqa: N802 - Slicer's name
    """Like Slicer: instantiate each node class to read its class name (abstract classes raise TypeError)."""
    return tuple(cls().GetClassName() for cls in node_classes(datatype))


def isParameterPack(obj) -> bool:  # noqa: N802 - Slicer's name
    return getattr(obj, "_is_parameterPack", False)


class _Member:
    """One member: its name, type, validators and default."""

    def __init__(self, name: str, annotated, owner) -> None:
        self.name = name
        self.annotated = annotated
        self.base, annotations = split_annotations(annotated)
        self.validators = [a for a in annotations if isinstance(a, Validator)]
        defaults = [a for a in annotations if isinstance(a, Default)]
        unused = [a for a in annotations if not isinstance(a, (Validator, Default))]
        if unused:
            raise ValueError(f"{owner.__name__}.{name}: annotations no serializer uses: {unused}")
        self.nodes = node_classes(annotated)
        if self.base in (bool, int, float, str):
            self.kind = "scalar"
        elif self.nodes is not None:
            self.kind = "node"
        elif isParameterPack(self.base):
            self.kind = "pack"
        else:
            raise TypeError(f"{owner.__name__}.{name}: unable to create a serializer for {annotated!r}")
        if name in owner.__dict__:
            self.default = owner.__dict__[name]
        elif defaults:
            self.default = defaults[0].value
        else:
            self.default = {"scalar": lambda: self.base(), "node": lambda: None, "pack": lambda: self.base()}[self.kind]()
        try:
            self.validate(self.default)
        except Exception as error:
            raise ValueError(f"The default parameter of '{self.default}' fails the validation checks:\n  {error}")

    def validate(self, value) -> None:
        if self.kind == "scalar" and not isinstance(value, self.base):
            if not (self.base is float and isinstance(value, int) and not isinstance(value, bool)):
                raise ValueError(f"{self.name}: {value!r} is not a {self.base.__name__}")
        if self.kind == "node" and value is not None and not isinstance(value, self.nodes):
            raise ValueError(f"{self.name}: {value!r} is not one of {self.nodes}")
        if self.kind == "pack" and not isinstance(value, self.base):
            raise ValueError(f"{self.name}: {value!r} is not a {self.base.__name__}")
        for validator in self.validators:
            validator.validate(value)

    # storage in a vtkMRMLScriptedModuleNode
    def write(self, node, name: str, value) -> None:
        self.validate(value)
        if self.kind == "scalar":
            node.SetParameter(name, "True" if value is True else "False" if value is False else str(value))
        elif self.kind == "node":
            node.SetNodeReferenceID(name, value.GetID() if value is not None else None)
        else:
            for member in value.allParameters.values():
                member.write(node, f"{name}.{member.name}", getattr(value, member.name))

    def read(self, node, name: str):
        if not self.is_in(node, name):
            self.write(node, name, self.default)
        if self.kind == "scalar":
            text = node.GetParameter(name)
            return text == "True" if self.base is bool else self.base(text)
        if self.kind == "node":
            return node.GetNodeReference(name)
        return _observed_pack(self.base, node, name)

    def is_in(self, node, name: str) -> bool:
        if self.kind == "node":
            return node.GetNodeReferenceID(name) is not None or name in node.GetParameterNames()
        if self.kind == "pack":
            first = next(iter(self.base.allParameters.values()))
            return first.is_in(node, f"{name}.{first.name}")
        return name in node.GetParameterNames()


def _members(cls) -> dict[str, _Member]:
    hints = typing.get_type_hints(cls, include_extras=True)
    if not hints:
        raise ValueError("Unable to find any members")
    return {name: _Member(name, annotated, cls) for name, annotated in hints.items()}


# --- parameterPack -----------------------------------------------------------------------------------
def parameterPack(classtype=None):  # noqa: N802 - Slicer's name
    def wrap(cls):
        members = _members(cls)
        for member in members.values():
            setattr(cls, member.name, _pack_property(member))

        def __init__(self, **values) -> None:  # noqa: N807
            unknown = set(values) - set(members)
            if unknown:
                raise TypeError(f"__init__() got unexpected keyword arguments {sorted(unknown)}")
            for member in members.values():
                setattr(self, member.name, values.get(member.name, _copy_default(member)))

        cls.__init__ = __init__
        cls.__eq__ = lambda self, other: type(self) is type(other) and all(
            getattr(self, n) == getattr(other, n) for n in members)
        cls.allParameters = members
        cls._is_parameterPack = True
        return cls

    return wrap if classtype is None else wrap(classtype)


def _copy_default(member: _Member):
    return member.base() if member.kind == "pack" else member.default


def _pack_property(member: _Member) -> property:
    def getter(self):
        return self.__dict__[f"_value_{member.name}"]

    def setter(self, value) -> None:
        member.validate(value)
        self.__dict__[f"_value_{member.name}"] = value
        saver = self.__dict__.get("_save")
        if saver is not None:
            saver()

    return property(getter, setter)


def _observed_pack(pack_class, node, name: str):
    """A pack holding the node's values; setting a member (at any depth) writes the pack back."""
    pack = pack_class.__new__(pack_class)
    for member in pack_class.allParameters.values():
        value = member.read(node, f"{name}.{member.name}")
        pack.__dict__[f"_value_{member.name}"] = value
    pack.__dict__["_save"] = lambda: _member_of_pack(pack_class).write(node, name, pack)
    return pack


def _member_of_pack(pack_class) -> _Member:
    member = _Member.__new__(_Member)
    member.name, member.base, member.kind, member.validators, member.nodes = pack_class.__name__, pack_class, "pack", [], None
    return member


# --- parameterNodeWrapper -------------------------------------------------------------------------------
def parameterNodeWrapper(classtype=None):  # noqa: N802 - Slicer's name
    def wrap(cls):
        members = _members(cls)

        def __init__(self, parameterNode) -> None:  # noqa: N803, N807 - Slicer's name
            if parameterNode is None:
                raise ValueError("A parameter node wrapper needs a vtkMRMLScriptedModuleNode")
            self.__dict__["parameterNode"] = parameterNode
            self.__dict__["_guis"] = {}
            for member in members.values():  # Slicer writes defaults for members the node lacks
                if not member.is_in(parameterNode, member.name):
                    member.write(parameterNode, member.name, _copy_default(member))

        def connectGui(self, gui) -> int:  # noqa: N802 - Slicer's name
            for member in members.values():
                if member.kind == "node":
                    getNodeTypes(member.annotated)  # what Slicer's node combo box connector does
            tag = len(self._guis) + 1
            self._guis[tag] = gui
            return tag

        def disconnectGui(self, tag) -> None:  # noqa: N802 - Slicer's name
            self._guis.pop(tag, None)

        def getValue(self, name: str):  # noqa: N802 - Slicer's name
            value = self
            for part in name.split("."):
                value = getattr(value, part)
            return value

        def setValue(self, name: str, value) -> None:  # noqa: N802 - Slicer's name
            *path, last = name.split(".")
            setattr(self.getValue(".".join(path)) if path else self, last, value)

        def AddObserver(self, event, callback, priority=0.0) -> int:  # noqa: N802 - Slicer's name
            return self.parameterNode.AddObserver(event, callback, priority)  # Slicer's wrapper delegates too

        def RemoveObserver(self, tag) -> None:  # noqa: N802 - Slicer's name
            self.parameterNode.RemoveObserver(tag)

        namespace = dict(__init__=__init__, connectGui=connectGui, disconnectGui=disconnectGui, getValue=getValue,
                         setValue=setValue, AddObserver=AddObserver, RemoveObserver=RemoveObserver,
                         allParameters=members, _is_parameterNodeWrapper=True)
        for member in members.values():
            namespace[member.name] = property(
                lambda self, m=member: m.read(self.parameterNode, m.name),
                lambda self, value, m=member: m.write(self.parameterNode, m.name, value))
        return type(cls.__name__, (), {**namespace, "__doc__": cls.__doc__, "__module__": cls.__module__})

    return wrap if classtype is None else wrap(classtype)


# --- which widgets Slicer's GUI connectors bind (guiConnectors.py) -----------------------------------------
_FLOAT_WIDGETS = {"QDoubleSpinBox", "ctkSliderWidget", "qMRMLSliderWidget", "ctkDoubleSlider", "ctkDoubleSpinBox",
                  "qMRMLSpinBox"}
_BOUNDED_ONLY = {"ctkSliderWidget", "qMRMLSliderWidget"}


def bindable(widget_class: str, annotated) -> str:
    """'' when Slicer binds a widget of ``widget_class`` to a member of type ``annotated``, else why not."""
    base, annotations = split_annotations(annotated)
    has_choice = any(isinstance(a, Choice) for a in annotations)
    bounded = any(isinstance(a, WithinRange) for a in annotations)
    if widget_class in ("QComboBox", "ctkComboBox"):
        if base in (int, float, str, bool):
            return "" if has_choice else "a combo box needs the Choice annotation"
        return f"a combo box cannot show a {base!r}"
    if node_classes(annotated) is not None:
        return "" if widget_class == "qMRMLNodeComboBox" else "a node parameter needs a qMRMLNodeComboBox"
    if base is bool:
        return "" if widget_class in ("QCheckBox", "ctkCheckBox", "QPushButton", "ctkCheckablePushButton") else \
            f"{widget_class} cannot show a bool"
    if base in (int, float):
        if widget_class in _BOUNDED_ONLY and not bounded:
            return f"{widget_class} needs a WithinRange annotation"
        if widget_class in _FLOAT_WIDGETS or (base is int and widget_class in ("QSlider", "QSpinBox")):
            return ""
        return f"{widget_class} cannot show a {base.__name__}"
    if base is str:
        return "" if widget_class in ("QLineEdit", "QLabel", "QTextEdit") else f"{widget_class} cannot show a str"
    return f"no connector for {annotated!r}"
