"""NIST/Elam mass attenuation of the elements, from the table shipped with the package.

A fresh Slicer has no xraydb, so the Elam cross sections of every element MedSynth's materials and
filters use are shipped in ``attenuation.npz`` (made by ``python -m medsynth.drr.make_attenuation``)
and evaluated here with the tables' own cubic splines in log-log space, as the Elam paper (and
xraydb) prescribe: the values equal xraydb's ``mu_elam(..., kind="total")`` at any energy.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

import numpy as np

from medsynth.errors import InputError

_KINDS = ("photo", "coh", "incoh")
#: The Elam tables' validity range (eV); energies outside are clamped to it, as xraydb does.
_MIN_EV, _MAX_EV = 100.0, 8.0e5


@lru_cache(maxsize=1)
def _tables() -> dict[str, np.ndarray]:
    with resources.files("medsynth.drr").joinpath("attenuation.npz").open("rb") as handle:
        data = np.load(handle)
        return {key: data[key] for key in data.files}


def shipped_elements() -> list[str]:
    return [str(name) for name in _tables()["elements"]]


def _spline(log_energy: np.ndarray, log_value: np.ndarray, second: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Cubic spline through (log_energy, log_value) with known second derivatives, at ``x``.

    The bracketing nodes are the last one strictly below and the first one strictly above each
    point: the tables repeat an energy at each absorption edge, and this picks the side of the edge.
    """
    lo = np.maximum(np.searchsorted(log_energy, x, side="left") - 1, 0)
    hi = np.minimum(np.searchsorted(log_energy, x, side="right"), len(log_energy) - 1)
    step = log_energy[hi] - log_energy[lo]
    a = (log_energy[hi] - x) / step
    b = (x - log_energy[lo]) / step
    return (a * log_value[lo] + b * log_value[hi]
            + (step * step / 6) * ((a * a - 1) * a * second[lo] + (b * b - 1) * b * second[hi]))


def element_mass_attenuation(element: str, energies_keV: np.ndarray) -> np.ndarray:
    """Total mu/rho (cm^2/g: photo-absorption + coherent + incoherent scattering) of one element."""
    tables = _tables()
    if f"{element}/photo/log_energy" not in tables:
        raise InputError(
            f"No attenuation table for element {element!r}; shipped: {', '.join(shipped_elements())}. "
            "Add it to the materials and run python -m medsynth.drr.make_attenuation."
        )
    energies_eV = np.clip(np.asarray(energies_keV, dtype=float) * 1000.0, _MIN_EV, _MAX_EV)
    x = np.log(np.atleast_1d(energies_eV).ravel())
    total = np.zeros_like(x)
    for kind in _KINDS:
        key = f"{element}/{kind}"
        total += np.exp(_spline(tables[f"{key}/log_energy"], tables[f"{key}/log_value"], tables[f"{key}/spline"], x))
    return total.reshape(np.shape(energies_eV))
