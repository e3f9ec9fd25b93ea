"""Regenerate the shipped X-ray tube spectrum tables (``spectra.npz``) with SpekPy.

Run ``python -m medsynth.drr.make_spectra`` after ``pip install "medsynth[spectra]"`` (SpekPy is a
164 MB wheel, so it is not a runtime dependency: the small table it makes is shipped instead).

The table holds, on 1 keV bins centred at 1.5 ... 149.5 keV:
- ``unfiltered``: tungsten-anode spectra (12 deg anode, no added filtration) for 40-150 kVp in
  5 kV steps; ``medsynth.drr.spectra`` interpolates between kVps and applies any Al/Cu filtration
  with the shipped NIST attenuation tables (medsynth.drr.attenuation).
- ``named``: SpekPy's own filtered spectra for the DeepDRR-like presets 60 kV (Al 3.5 mm),
  90 kV (Al 4.0 mm) and 120 kV (Al 4.3 mm), used as they are and as a check of the runtime filtering.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

ENERGIES_KEV = np.arange(1.5, 150.0, 1.0)
KVPS = np.arange(40.0, 151.0, 5.0)
NAMED = {"60kV": (60.0, 3.5), "90kV": (90.0, 4.0), "120kV": (120.0, 4.3)}
ANODE_ANGLE_DEG = 12.0


def _spectrum(kvp: float, al_mm: float) -> np.ndarray:
    import spekpy  # only needed to regenerate the tables

    spek = spekpy.Spek(kvp=float(kvp), th=ANODE_ANGLE_DEG, dk=1.0)
    if al_mm > 0:
        spek.filter("Al", float(al_mm))
    energies, fluence = spek.get_spectrum()
    out = np.zeros_like(ENERGIES_KEV)
    index = np.rint(energies - ENERGIES_KEV[0]).astype(int)
    keep = (index >= 0) & (index < len(out))
    out[index[keep]] = fluence[keep]
    return out


def build_tables() -> dict[str, np.ndarray]:
    import spekpy

    unfiltered = np.stack([_spectrum(kvp, 0.0) for kvp in KVPS])
    named = np.stack([_spectrum(kvp, al) for kvp, al in NAMED.values()])
    return {
        "energies_keV": ENERGIES_KEV.astype(np.float32),
        "kvps": KVPS.astype(np.float32),
        "unfiltered": (unfiltered / unfiltered.max()).astype(np.float32),
        "named_names": np.array(list(NAMED)),
        "named_kvp": np.array([v[0] for v in NAMED.values()], dtype=np.float32),
        "named_al_mm": np.array([v[1] for v in NAMED.values()], dtype=np.float32),
        "named": (named / named.max(axis=1, keepdims=True)).astype(np.float32),
        "generator": np.array(f"spekpy {getattr(spekpy, '__version__', '?')}, anode angle {ANODE_ANGLE_DEG} deg, dk 1 keV"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("spectra.npz"))
    args = parser.parse_args(argv)
    tables = build_tables()
    temp = args.out.with_suffix(".tmp.npz")
    np.savez_compressed(temp, **tables)
    temp.replace(args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
