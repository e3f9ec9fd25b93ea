"""Parameter dataclasses <-> trame state: one state variable per field, widgets built from the fields.

A panel's controls come from ``medsynth.parameters.describe_fields`` (ranges give sliders,
choices give selects, booleans give switches), so the page offers exactly what the library
accepts, and ``from_state`` turns the page back into a checked parameter object.
"""

from __future__ import annotations

from typing import Iterable

from medsynth import parameters as params


def state_name(prefix: str, field: str) -> str:
    """The trame state variable of a (dotted) field: ``drr`` + ``pose.sid`` -> ``drr_pose_sid``."""
    return f"{prefix}_{field.replace('.', '_')}"


def push(state, prefix: str, parameters) -> None:
    """Write every field of ``parameters`` into the state."""
    for info in params.describe_fields(type(parameters)):
        state[state_name(prefix, info.name)] = params.get_value(parameters, info.name)


def from_state(cls, state, prefix: str, where: str | None = None):
    """A checked ``cls`` from the state's values (InputError names the bad field and its limits)."""
    changes = {}
    for info in params.describe_fields(cls):
        value = state[state_name(prefix, info.name)]
        if value is not None and value != "":
            changes[info.name] = value
    return params.updated(cls(), changes, where or cls.__name__)


def field_infos(cls, names: Iterable[str]) -> list[params.FieldInfo]:
    """The FieldInfo of each named field, in the given order."""
    infos = {info.name: info for info in params.describe_fields(cls)}
    return [infos[name] for name in names]


def control(prefix: str, info: params.FieldInfo, label: str | None = None, step: float | None = None,
            **events):
    """One vuetify widget bound to a field: slider (range), select (choices), switch (bool), text field."""
    from trame.widgets import vuetify3 as v3

    name = state_name(prefix, info.name)
    label = label or info.help or info.name
    common = dict(v_model=(name,), label=label, density="compact", hide_details=True, classes="my-1",
                  raw_attrs=[f'data-field="{name}"'], **events)
    if info.type is bool:
        return v3.VSwitch(color="primary", **common)
    if info.choices:
        return v3.VSelect(items=(list(info.choices),), **common)
    if info.range is not None and info.type in (int, float):
        if step is None:
            step = 1 if info.type is int else (info.range.maximum - info.range.minimum) / 200.0
        return v3.VSlider(min=info.range.minimum, max=info.range.maximum, step=step, thumb_label=True,
                          **common)
    return v3.VTextField(type="number" if info.type in (int, float) else "text", **common)
