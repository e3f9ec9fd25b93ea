"""Installing what a job needs inside Slicer (issue 14, item 5): one dialog, nothing installed
after Cancel, torch only through the PyTorch extension, torch-dependent packages after torch and
without their dependencies, and numba-cuda not reported installed because numba is.

Slicer's dialog, pip and the PyTorch extension are replaced by recorders (slicer-core has no GUI);
``medsynth.mrml.installer`` and ``medsynth.dependencies`` run for real.
"""

from __future__ import annotations

import sys
import types

import pytest

slicer = pytest.importorskip("slicer")

from medsynth import dependencies  # noqa: E402
from medsynth.dependencies import Dependency, installed_version  # noqa: E402
from medsynth.errors import InputError  # noqa: E402
from medsynth.mrml import installer  # noqa: E402


class FakeSlicer:
    """Records the dialog, pip installs and torch installs; installing marks the package present."""

    def __init__(self, monkeypatch, missing: set[str], answer: bool, torch_installs: bool = True) -> None:
        self.missing, self.answer, self.torch_installs = set(missing), answer, torch_installs
        self.dialogs: list[str] = []
        self.installed: list[str] = []  # in order: pip requirements and "torch (PyTorch extension)"
        monkeypatch.setattr(dependencies, "installed_version",
                            lambda entry: None if entry.distribution in self.missing else "1.0")
        monkeypatch.setattr(slicer.util, "confirmOkCancelDisplay", self.confirm, raising=False)
        monkeypatch.setattr(slicer.util, "pip_install", self.pip_install, raising=False)
        monkeypatch.delattr(slicer, "packaging", raising=False)  # Slicer < 5.11: plain pip_install
        fake_utils = types.ModuleType("PyTorchUtils")
        fake_utils.PyTorchUtilsLogic = lambda: self
        monkeypatch.setitem(sys.modules, "PyTorchUtils", fake_utils)

    def confirm(self, text, **_options):
        self.dialogs.append(text)
        return self.answer

    def pip_install(self, requirement: str) -> None:
        self.installed.append(requirement)
        self.missing.discard(requirement.split("==")[0].split(">=")[0].split()[0])

    # PyTorchUtilsLogic
    def torchInstalled(self) -> bool:  # noqa: N802
        return "torch" not in self.missing

    def installTorch(self, askConfirmation=True):  # noqa: N802, N803
        assert askConfirmation is False  # the user agreed in MedSynth's one dialog
        if not self.torch_installs:
            return None
        self.installed.append("torch (PyTorch extension)")
        self.missing.discard("torch")
        return object()


def test_cancel_installs_nothing(monkeypatch):
    fake = FakeSlicer(monkeypatch, {"torch", "monai", "einops", "pyyaml"}, answer=False)
    assert installer.ensure_installed("semantic", "Semantic Synthesis") is False
    assert len(fake.dialogs) == 1 and fake.installed == []
    assert "torch" in fake.dialogs[0] and "from the PyTorch extension" in fake.dialogs[0]


def test_torch_comes_from_the_pytorch_extension_first_and_monai_without_dependencies(monkeypatch):
    fake = FakeSlicer(monkeypatch, {"torch", "monai", "einops"}, answer=True)
    assert installer.ensure_installed("semantic", "Semantic Synthesis") is True
    assert len(fake.dialogs) == 1
    assert fake.installed[0] == "torch (PyTorch extension)"
    assert "monai==1.6.1 --no-deps" in fake.installed  # pip cannot pull or replace torch
    assert not any(entry.startswith("torch") and "extension" not in entry for entry in fake.installed)


def test_a_failed_torch_install_stops_before_monai(monkeypatch):
    fake = FakeSlicer(monkeypatch, {"torch", "monai"}, answer=True, torch_installs=False)
    assert installer.ensure_installed("semantic", "Semantic Synthesis") is False
    assert fake.installed == []


def test_missing_pytorch_extension_names_the_fix(monkeypatch):
    FakeSlicer(monkeypatch, {"torch"}, answer=True)
    monkeypatch.setitem(sys.modules, "PyTorchUtils", None)  # import fails
    with pytest.raises(InputError, match="Install the 'PyTorch' extension"):
        installer.ensure_installed("semantic", "Semantic Synthesis")


def test_torch_is_never_pip_installed():
    with pytest.raises(ValueError, match="PyTorch extension"):
        installer.pip_install(dependencies.dependency("torch"))


def test_nothing_missing_means_no_dialog(monkeypatch):
    fake = FakeSlicer(monkeypatch, set(), answer=False)
    assert installer.ensure_installed("drr", "DRR Projection") is True
    assert fake.dialogs == []


def test_drrs_need_only_numba_beyond_slicers_packages():
    assert dependencies.JOB_DEPENDENCIES["drr"] == ("numba",)  # the NIST tables are shipped


def test_a_submodule_does_not_count_as_its_own_distribution():
    """numba.cuda imports whenever numba is installed: numba-cuda must be found by its distribution."""
    pytest.importorskip("numba")
    assert installed_version(Dependency("medsynth-no-such-numba-cuda", "numba.cuda", "x", "test")) is None
    assert installed_version(Dependency("medsynth-no-such-numba", "numba", "x", "test")) == "installed"
