"""Installing what a job needs inside Slicer: one dialog, on first use, only when the user agrees.

torch comes from Slicer's PyTorch extension (``PyTorchUtils``), never from pip; packages that
depend on torch are then installed without their dependencies so pip cannot replace it. Slicer's
own numpy and SimpleITK are never touched.
"""

from __future__ import annotations

import logging

from medsynth.dependencies import Dependency, missing_for
from medsynth.errors import InputError


def install_message(job_title: str, missing: list[Dependency]) -> str:
    lines = [f"{job_title} needs Python packages that are not installed yet:"]
    lines += [f"  - {d.distribution}: {d.purpose}" + (" (from the PyTorch extension)" if d.via_pytorch_extension else "")
              for d in missing]
    lines.append("Install them now? This downloads them from the internet and can take a few minutes.")
    return "\n".join(lines)


def ensure_installed(job: str, job_title: str, ask: bool = True) -> bool:
    """True when ``job`` can run: already installed, or installed now with the user's consent.

    False when the user declines (nothing is installed then). Raises InputError when the PyTorch
    extension is needed but missing, naming the fix.
    """
    import slicer

    missing = missing_for(job)
    if not missing:
        return True
    if ask and not slicer.util.confirmOkCancelDisplay(install_message(job_title, missing), windowTitle="MedSynth"):
        logging.info("MedSynth: the user declined to install %s", ", ".join(d.distribution for d in missing))
        return False
    for entry in missing:
        if entry.via_pytorch_extension:
            if not install_torch():
                return False
        else:
            pip_install(entry)
    return not missing_for(job)


def install_torch() -> bool:
    """torch through the PyTorch extension (it picks the CUDA build); False if it did not install."""
    try:
        import PyTorchUtils
    except ImportError:
        raise InputError("Install the 'PyTorch' extension from the Extensions Manager and restart Slicer: "
                         "MedSynth installs torch through it.") from None
    logic = PyTorchUtils.PyTorchUtilsLogic()
    if logic.torchInstalled():
        return True
    torch = logic.installTorch(askConfirmation=False)  # the user agreed in MedSynth's dialog already
    return torch is not None


def pip_install(entry: Dependency) -> None:
    """pip-install one package into Slicer's Python (never torch, never Slicer's own packages)."""
    import slicer

    if entry.via_pytorch_extension:
        raise ValueError(f"{entry.distribution} is installed through the PyTorch extension, not pip")
    requirement = f"{entry.requirement} --no-deps" if entry.no_deps else entry.requirement
    if not entry.no_deps and hasattr(slicer, "packaging") and hasattr(slicer.packaging, "pip_ensure"):
        # Slicer >= 5.11: progress dialog; the user already agreed in MedSynth's own dialog
        slicer.packaging.pip_ensure([entry.requirement], prompt_install=False, requester="MedSynth")
    else:
        slicer.util.pip_install(requirement)
