"""Regenerate the shipped NIST/Elam X-ray attenuation tables (``attenuation.npz``) from xraydb.

Run ``python -m medsynth.drr.make_attenuation`` after ``pip install "medsynth[attenuation]"``.
Slicer does not ship xraydb, so the DRR engine reads this small table instead: for every element
of the materials in ``medsynth.drr.materials`` and of the spectrum filters (Al, Cu), the Elam
photo-absorption, coherent and incoherent scattering cross sections as tabulated (log energy in eV,
log cm^2/g, and the tables' cubic-spline second derivatives). ``medsynth.drr.attenuation``
evaluates the same splines, so the values equal xraydb's at every energy.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from medsynth.drr.materials import MATERIALS
from medsynth.io.atomic import atomic_output

#: Elements of the spectrum filters (``medsynth.drr.spectra.filtered``).
FILTER_ELEMENTS = ("Al", "Cu")
#: The three Elam tables and their columns: (kind, sqlite table, value column).
KINDS = (
    ("photo", "photoabsorption", "log_photoabsorption"),
    ("coh", "scattering", "log_coherent_scatter"),
    ("incoh", "scattering", "log_incoherent_scatter"),
)


def elements() -> list[str]:
    """Every element the DRR engine needs, in a stable order."""
    names = {element for material in MATERIALS.values() for element, _ in material.composition}
    return sorted(names | set(FILTER_ELEMENTS))


def build_tables() -> dict[str, np.ndarray]:
    import xraydb  # only needed to regenerate the tables

    database = xraydb.get_xraydb()
    tables: dict[str, np.ndarray] = {}
    for element in elements():
        for kind, table, column in KINDS:
            row = database.get_cache(table, column="element", value=element)[0]
            tables[f"{element}/{kind}/log_energy"] = np.array(json.loads(row.log_energy), dtype=np.float64)
            tables[f"{element}/{kind}/log_value"] = np.array(json.loads(getattr(row, column)), dtype=np.float64)
            tables[f"{element}/{kind}/spline"] = np.array(json.loads(getattr(row, f"{column}_spline")), dtype=np.float64)
    tables["elements"] = np.array(elements())
    tables["generator"] = np.array(f"xraydb {xraydb.__version__}, Elam tables (total = photo + coh + incoh)")
    return tables


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("attenuation.npz"))
    args = parser.parse_args(argv)
    with atomic_output(args.out) as temp:
        np.savez_compressed(temp, **build_tables())
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
