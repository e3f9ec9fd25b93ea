"""The optional DeepDRR backend: C-arm mapping, the worker protocol, and DeepDRR itself where installed.

Without DeepDRR, the mapping is checked against a numpy re-derivation of DeepDRR's MobileCArm
projection. With ``MEDSYNTH_DEEPDRR_PYTHON`` pointing at a DeepDRR environment, DeepDRR's own
matrices are compared too; rendering needs CUDA and is skipped with DeepDRR's reason otherwise.
"""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from medsynth.drr import deepdrr_backend as backend
from medsynth.errors import InputError
from medsynth.geometry import CArm, load_preset

POSES = [
    dict(),
    dict(primary_angle=30.0, secondary_angle=15.0),
    dict(primary_angle=-45.0, secondary_angle=-20.0, patient_position="FFS"),
    dict(primary_angle=90.0, patient_position="HFP"),
    dict(primary_angle=120.0, secondary_angle=40.0, patient_position="HFDL"),
    dict(primary_angle=-170.0, secondary_angle=-85.0),
]


def carm(**changes) -> CArm:
    base = CArm(sid=1000.0, sod=600.0, detector_rows=80, detector_columns=100, pixel_spacing=1.5,
                isocenter=(10.0, -20.0, 30.0))
    return base.replace(**changes)


@pytest.mark.parametrize("pose", POSES)
def test_mapped_mobile_carm_gives_medsynths_projection_matrix(pose):
    ours = carm(**pose)
    mapped = backend.to_deepdrr(ours)
    theirs = backend.deepdrr_index_from_world(mapped.mobile_carm_kwargs())
    np.testing.assert_allclose(backend.medsynth_matrix_from_deepdrr(theirs), ours.projection_matrix(), atol=1e-8)
    assert backend.mapping_error_pixels(ours, theirs) < 1e-9
    # DeepDRR's sensor: width along MedSynth's rows, height along its columns
    assert (mapped.sensor_width, mapped.sensor_height) == (80, 100)


def test_mobile_preset_maps_to_deepdrrs_default_geometry():
    mapped = backend.to_deepdrr(load_preset("mobile"))
    kwargs = mapped.mobile_carm_kwargs()
    assert (kwargs["source_to_detector_distance"], kwargs["source_to_isocenter_vertical_distance"]) == (1020.0, 530.0)
    assert (kwargs["sensor_width"], kwargs["sensor_height"], kwargs["pixel_size"]) == (1536, 1536, 0.194)
    # at 0 / 0 DeepDRR's arm is unrotated; only the in-plane read-out differs
    assert abs(mapped.alpha) < 1e-9 and abs(mapped.beta) < 1e-9 and abs(abs(mapped.gamma) - 90.0) < 1e-9


def test_detector_centre_and_pixel_centres_agree():
    ours = carm(primary_angle=20.0)
    theirs = backend.medsynth_matrix_from_deepdrr(
        backend.deepdrr_index_from_world(backend.to_deepdrr(ours).mobile_carm_kwargs()))
    centre = theirs @ np.append(ours.isocenter, 1.0)
    np.testing.assert_allclose(centre[:2] / centre[2], [(100 - 1) / 2, (80 - 1) / 2], atol=1e-9)
    # DeepDRR's image [v, u] becomes MedSynth's [row, col] by a transpose
    dd_image = np.arange(100 * 80).reshape(100, 80)  # [v, u]: 100 values of v (our columns), 80 of u (our rows)
    assert backend.image_from_deepdrr(dd_image).shape == (80, 100)
    assert backend.image_from_deepdrr(dd_image)[3, 7] == dd_image[7, 3]


def test_non_square_pixels_are_refused_with_advice():
    with pytest.raises(InputError, match="square pixels"):
        backend.to_deepdrr(carm(pixel_spacing=(1.0, 0.8)))


def test_unconfigured_backend_says_how_to_configure(monkeypatch, tmp_path):
    monkeypatch.delenv(backend.ENVIRONMENT_VARIABLE, raising=False)
    monkeypatch.setenv("MEDSYNTH_SETTINGS", str(tmp_path / "settings.json"))
    with pytest.raises(backend.DeepDRRUnavailable, match=backend.ENVIRONMENT_VARIABLE):
        backend.DeepDRRBackend().probe()
    with pytest.raises(backend.DeepDRRUnavailable, match="does not exist"):
        backend.DeepDRRBackend(str(tmp_path / "no-python")).probe()


def test_worker_reports_a_python_without_deepdrr():
    """The worker protocol end to end, run in this (DeepDRR-free) Python."""
    try:
        import deepdrr  # noqa: F401

        pytest.skip("DeepDRR is importable in the test environment itself")
    except Exception:
        pass
    worker = backend.DeepDRRBackend(sys.executable, timeout_s=120)
    probe = worker.probe()
    assert probe["importable"] is False and "cannot be imported" in probe["reason"]
    with pytest.raises(backend.DeepDRRUnavailable, match="cannot be imported"):
        worker.index_from_world([carm()])


@pytest.fixture(scope="module")
def deepdrr_python():
    python = os.environ.get(backend.ENVIRONMENT_VARIABLE)
    if not python:
        pytest.skip(f"DeepDRR is not installed here: set {backend.ENVIRONMENT_VARIABLE} to a DeepDRR environment's python")
    probe = backend.DeepDRRBackend(python, timeout_s=300).probe()
    if not probe["importable"]:
        pytest.skip(f"DeepDRR does not import: {probe['reason']}")
    return python, probe


def test_deepdrrs_own_mobile_carm_matches_medsynth(deepdrr_python):
    python, probe = deepdrr_python
    carms = [carm(**pose) for pose in POSES]
    matrices = backend.DeepDRRBackend(python, timeout_s=300).index_from_world(carms)
    for ours, theirs in zip(carms, matrices):
        # DeepDRR computes in float32: agreement to well under a thousandth of a pixel
        assert backend.mapping_error_pixels(ours, theirs) < 1e-3
        np.testing.assert_allclose(theirs, backend.deepdrr_index_from_world(backend.to_deepdrr(ours).mobile_carm_kwargs()),
                                   rtol=1e-5, atol=1e-2)


def test_deepdrr_render_or_the_reason_it_cannot(deepdrr_python, lidc_ct):
    python, probe = deepdrr_python
    if not probe["cuda"]:
        pytest.skip(f"DeepDRR render skipped: {probe['reason']}")
    small = carm(detector_rows=64, detector_columns=64, pixel_spacing=6.0, isocenter=tuple(lidc_ct.center_ras))
    images = backend.DeepDRRBackend(python, timeout_s=600).render(lidc_ct, [small], spectrum="90kV")
    assert images[0].shape == (64, 64) and np.isfinite(images[0]).all() and images[0].std() > 0
