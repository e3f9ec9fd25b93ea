"""DRR physics: HU -> density, NIST attenuation, tube spectra, polychromatic Beer-Lambert,
noise, scatter, blur and the explicit display step."""

from __future__ import annotations

import numpy as np
import pytest

from medsynth import LabelMap, LabelTable, Volume
from medsynth.drr import HUThresholds, LabelMaterials, ScatterModel, material, polychromatic, prepare, spectrum
from medsynth.drr.density import hu_to_density, plastimatch_mu
from medsynth.drr.display import to_uint8
from medsynth.drr.materials import MATERIALS, parse_mapping
from medsynth.drr.noise import detector_blur, poisson_noise
from medsynth.drr.spectra import _tables, filtered
from medsynth.errors import InputError
from medsynth.volume import VolumeMetadata


def test_hu_to_density_follows_deepdrr_pieces():
    hu = np.array([-2048.0, -1000.0, 0.0, 1000.0, 2000.0])
    np.testing.assert_allclose(hu_to_density(hu), [0.0, 0.001, 1.03, 1.6186, 2.2072], atol=1e-4)
    np.testing.assert_allclose(plastimatch_mu(np.array([-900.0, 0.0, 1000.0])), [0.0, 0.022, 0.044], atol=1e-7)


def test_mass_attenuation_matches_nist_values():
    # NIST XCOM / X-ray mass attenuation tables (total, with coherent scattering)
    assert material("water").mass_attenuation(np.array([60.0]))[0] == pytest.approx(0.2059, rel=0.03)
    assert material("bone").mass_attenuation(np.array([60.0]))[0] == pytest.approx(0.3148, rel=0.05)
    assert material("air").mass_attenuation(np.array([100.0]))[0] == pytest.approx(0.1541, rel=0.03)
    # iodine's K edge (33.2 keV) makes contrast far more attenuating just above it than soft tissue
    contrast, soft = material("contrast"), material("soft_tissue")
    ratio_above = contrast.mass_attenuation(np.array([34.0]))[0] / soft.mass_attenuation(np.array([34.0]))[0]
    ratio_below = contrast.mass_attenuation(np.array([33.0]))[0] / soft.mass_attenuation(np.array([33.0]))[0]
    assert ratio_above > 2.0 and ratio_above > 1.5 * ratio_below
    assert {"air", "soft_tissue", "bone", "lung", "fat", "contrast", "metal"} <= set(MATERIALS)
    with pytest.raises(InputError, match="Known materials"):
        material("unobtainium")


def test_named_spectra_are_deepdrr_like_and_runtime_filtering_reproduces_them():
    beam = spectrum("90kV")
    assert 47.0 < beam.mean_energy_keV < 51.0  # DeepDRR's 90 kV spectrum averages about 49 keV
    assert beam.energies_keV.max() < 90.0
    means = [spectrum(f"{kv}kV").mean_energy_keV for kv in (60, 90, 120)]
    assert means == sorted(means)
    tables = _tables()
    for index, (kvp, al_mm) in enumerate(zip(tables["named_kvp"], tables["named_al_mm"])):
        row = list(tables["kvps"]).index(kvp)
        ours = filtered(tables["energies_keV"], tables["unfiltered"][row], al_mm=float(al_mm))
        ours /= ours.max()
        spekpy = tables["named"][index]
        assert np.abs(ours - spekpy).max() < 0.03  # xraydb's aluminium vs SpekPy's own filtering
    # other kVps interpolate, copper hardens the beam
    assert spectrum("80kV").mean_energy_keV < spectrum("100kV").mean_energy_keV
    assert spectrum(90, cu_mm=0.2).mean_energy_keV > spectrum(90).mean_energy_keV + 3
    assert spectrum("60keV").energies_keV.tolist() == [60.0]
    with pytest.raises(InputError, match="Unknown spectrum"):
        spectrum("hard")
    with pytest.raises(InputError, match="outside"):
        spectrum(20)


def test_polychromatic_beer_lambert():
    soft, bone = material("soft_tissue"), material("bone")
    area = np.zeros((1, 3, 2), np.float32)
    area[0, 1] = [10.0, 0.0]  # 10 g/cm^2 of soft tissue
    area[0, 2] = [20.0, 0.0]
    mono = spectrum("60keV")
    energy, photons = polychromatic(area, [soft, bone], mono)
    mu = soft.mass_attenuation(np.array([60.0]))[0]
    np.testing.assert_allclose(energy[0], [1.0, np.exp(-10 * mu), np.exp(-20 * mu)], rtol=1e-5)
    np.testing.assert_allclose(photons, energy, rtol=1e-5)
    # a polychromatic beam hardens: the second 10 g/cm^2 attenuate less than the first
    poly, _ = polychromatic(area, [soft, bone], spectrum("90kV"))
    first, second = -np.log(poly[0, 1]), -np.log(poly[0, 2]) + np.log(poly[0, 1])
    assert second < 0.95 * first
    # material-selective: only bone -> no attenuation where there is no bone
    only_bone, _ = polychromatic(area, [soft, bone], spectrum("90kV"), only=["bone"])
    np.testing.assert_allclose(only_bone, 1.0)


def test_poisson_noise_has_photon_statistics():
    rng = np.random.default_rng(7)
    fraction = np.full((200, 200), 0.25, np.float32)
    noisy = poisson_noise(fraction, fraction, 10000.0, rng)
    assert noisy.mean() == pytest.approx(0.25, rel=0.01)
    # relative standard deviation of 2500 counts is 1/50
    assert noisy.std() / noisy.mean() == pytest.approx(1 / 50, rel=0.05)
    again = poisson_noise(fraction, fraction, 10000.0, np.random.default_rng(7))
    np.testing.assert_array_equal(noisy, again)
    with pytest.raises(InputError, match="photon count"):
        poisson_noise(fraction, fraction, 0.0, rng)
    blurred = detector_blur(noisy, 1.5)
    assert blurred.std() < 0.5 * noisy.std() and blurred.mean() == pytest.approx(noisy.mean(), rel=1e-3)
    with pytest.raises(InputError, match="blur"):
        detector_blur(noisy, -1.0)


def test_scatter_is_smooth_positive_and_grows_with_thickness():
    model = ScatterModel()
    empty = np.ones((64, 64), np.float32)
    assert np.abs(model.scatter(empty, (1.0, 1.0))).max() < 1e-6  # no object, no scatter
    thin = np.full((64, 64), np.exp(-1.0), np.float32)
    thick = np.full((64, 64), np.exp(-4.0), np.float32)
    assert model.scatter(thick, (2.0, 2.0)).mean() / thick.mean() > model.scatter(thin, (2.0, 2.0)).mean() / thin.mean()
    # about SPR 1 behind 20 cm of water at 90 kV (I/I0 about exp(-4))
    spr = model.scatter(np.full((128, 128), np.exp(-4.0), np.float32), (4.0, 4.0))[64, 64] / np.exp(-4.0)
    assert 0.5 < spr < 2.0
    edge = np.ones((64, 64), np.float32)
    edge[:, 32:] = np.exp(-3.0)
    scatter = model.scatter(edge, (2.0, 2.0))
    assert np.all(scatter >= 0) and np.abs(np.diff(scatter, axis=1)).max() < 0.01
    with pytest.raises(InputError, match="Scatter"):
        ScatterModel(amplitude=-1.0)


def test_display_scaling_is_explicit_and_reported():
    image = np.linspace(0.0, 4.0, 100, dtype=np.float32).reshape(10, 10)
    pixels, window = to_uint8(image, window=(1.0, 3.0))
    assert window == (1.0, 3.0) and pixels.dtype == np.uint8
    assert pixels.min() == 0 and pixels.max() == 255
    auto, used = to_uint8(image)
    assert used[0] == pytest.approx(np.percentile(image, 0.5)) and used[1] == pytest.approx(np.percentile(image, 99.5))
    with pytest.raises(InputError, match="2D"):
        to_uint8(np.zeros((2, 2, 2)))


def small_ct() -> Volume:
    array = np.full((12, 12, 12), -1000.0, np.float32)
    array[3:9, 3:9, 3:9] = 40.0
    array[5:7, 5:7, 5:7] = 900.0
    return Volume(array, metadata=VolumeMetadata(modality="CT", units="HU"))


def test_materials_from_thresholds_and_from_labels():
    ct = small_ct()
    default = prepare(ct)
    assert default.material_names == ["air", "soft_tissue", "bone"]
    indices = default.material_indices()
    assert indices[0, 0, 0] == 0 and indices[4, 4, 4] == 1 and indices[5, 5, 5] == 2
    np.testing.assert_allclose(default.densities()[5, 5, 5], hu_to_density(np.array([900.0]))[0], rtol=1e-5)
    labels_array = np.zeros(ct.array.shape, np.int16)
    labels_array[3:9, 3:9, 3:6] = 1  # call half the soft tissue "liver_left"
    labels_array[5:7, 5:7, 5:7] = 2
    labels = LabelMap(labels_array, ct.ijk_to_ras, table=LabelTable({1: "liver_left", 2: "vessel"}))
    mapped = prepare(ct, (labels, {"liver_*": "contrast", "vessel": "metal"}))
    assert mapped.material_names == ["air", "soft_tissue", "bone", "contrast", "metal"]
    indices = mapped.material_indices()
    assert indices[4, 4, 4] == 3 and indices[5, 5, 5] == 4 and indices[4, 4, 7] == 1  # unmapped: thresholds
    with pytest.raises(InputError, match="No label matches"):
        prepare(ct, (labels, {"kidney": "bone"}))
    with pytest.raises(InputError, match="empty"):
        prepare(ct, LabelMaterials(labels, {}))
    shifted = LabelMap(labels_array, ct.ijk_to_ras @ np.diag([1, 1, 1.5, 1.0]), table=labels.table)
    with pytest.raises(InputError, match="Resample"):
        prepare(ct, (shifted, {"vessel": "bone"}))
    with pytest.raises(InputError, match="increasing order"):
        HUThresholds(((300.0, "bone"), (-800.0, "air")))
    custom = prepare(ct, HUThresholds(((-500.0, "air"), (100.0, "fat"), (np.inf, "bone"))))
    assert custom.material_names == ["air", "fat", "bone"]
    assert parse_mapping("rib_*=bone, lung_*=lung") == {"rib_*": "bone", "lung_*": "lung"}
    with pytest.raises(InputError, match="label=material"):
        parse_mapping("rib bone")
    with pytest.raises(InputError, match="plastimatch"):
        prepare(ct, "deepdrr-ish")
