"""The shipped NIST/Elam attenuation table: equal to xraydb's values, and enough without xraydb."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from medsynth.drr import attenuation
from medsynth.drr.make_attenuation import elements
from medsynth.errors import InputError

# 1 keV bins of the spectra, off-grid energies, both sides of the K edges of Ca, Ti, I and Cu, and
# the clamped ends of the Elam range.
ENERGIES_KEV = np.concatenate([
    np.arange(1.5, 150.0, 1.0),
    np.linspace(10.0, 150.0, 281) + 0.0137,
    [4.0381, 4.0383, 4.9647, 4.9649, 8.9789, 8.9791, 33.1693, 33.1695],
    [0.05, 0.1, 800.0, 900.0],
])


def test_shipped_table_covers_every_material_and_filter_element():
    assert attenuation.shipped_elements() == elements()
    assert {"H", "O", "Ca", "I", "Ti", "Al", "Cu"} <= set(elements())


@pytest.mark.parametrize("element", elements())
def test_shipped_table_equals_xraydb(element):
    xraydb = pytest.importorskip("xraydb")
    with pytest.warns(UserWarning):  # xraydb warns about the clamped energies outside its range
        expected = xraydb.mu_elam(element, ENERGIES_KEV * 1000.0, kind="total")
    # bit for bit: the same spline arithmetic in the same order, so every DRR is unchanged
    np.testing.assert_array_equal(attenuation.element_mass_attenuation(element, ENERGIES_KEV), expected)


def test_iodine_k_edge_is_on_the_right_side():
    below, above = attenuation.element_mass_attenuation("I", np.array([33.16, 33.18]))
    assert above > 4 * below


def test_unknown_element_names_the_fix():
    with pytest.raises(InputError, match="make_attenuation"):
        attenuation.element_mass_attenuation("U", np.array([60.0]))


def test_drr_materials_and_spectra_need_no_xraydb():
    code = (
        "import sys; sys.modules['xraydb'] = None\n"
        "import numpy as np\n"
        "from medsynth.drr.materials import material\n"
        "from medsynth.drr.spectra import spectrum\n"
        "print(material('bone').mass_attenuation(np.array([60.0]))[0], spectrum(80, al_mm=2.5, cu_mm=0.1).mean_energy_keV)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    mu, mean_energy = map(float, result.stdout.split())
    assert mu == pytest.approx(0.3148, rel=0.05)  # NIST cortical bone at 60 keV
    assert 40.0 < mean_energy < 60.0
