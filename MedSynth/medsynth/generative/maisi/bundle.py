"""Load a user's downloaded MAISI bundle (MONAI's ``maisi_ct_generative``) and check it before use.

The bundle's own config defines the networks (MONAI's AutoencoderKlMaisi, DiffusionModelUNetMaisi,
ControlNetMaisi and the rectified-flow scheduler), so MedSynth builds exactly what the weights
were trained as; it only insists on a version whose pipeline it knows (rectified flow, >= 1.0)
and on the three weight files being present and fitting those networks.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from medsynth.errors import InputError

BUNDLE_NAME = "maisi_ct_generative"
#: Bundle versions whose inference MedSynth implements: rectified flow + ControlNet (MAISI v2).
SUPPORTED_MAJOR = 1
CONFIG_FILES = ("configs/inference.json", "configs/config_maisi3d-rflow.json", "configs/config_maisi.json")
WEIGHT_PATTERNS = {"autoencoder": "autoencoder*.pt", "diffusion_unet": "diff_unet*.pt", "controlnet": "controlnet*.pt"}
DOWNLOAD_HINT = (f"Download it (NVIDIA's licence: the weights cannot be shipped with MedSynth) with "
                 f"`python -m monai.bundle download {BUNDLE_NAME} --bundle_dir <folder>` and point MedSynth at "
                 f"<folder>/{BUNDLE_NAME} (--maisi-bundle, or MEDSYNTH_MAISI_BUNDLE).")


def bundle_folder(folder: str | Path | None = None) -> Path:
    """The MAISI bundle folder: the argument, else $MEDSYNTH_MAISI_BUNDLE, else the settings' extra.maisi_bundle."""
    if folder is None:
        folder = os.environ.get("MEDSYNTH_MAISI_BUNDLE")
    if folder is None:
        from medsynth.settings import Settings

        folder = Settings.load().extra.get("maisi_bundle")
    if not folder:
        raise InputError(f"No MAISI bundle is set. {DOWNLOAD_HINT}")
    path = Path(folder).expanduser()
    if not path.is_dir():
        raise InputError(f"The MAISI bundle folder {path} does not exist. {DOWNLOAD_HINT}")
    return path


@dataclass
class MaisiNetworks:
    autoencoder: object
    diffusion_unet: object
    controlnet: object
    scheduler: object
    scale_factor: float
    latent_channels: int
    version: str
    folder: Path

    def to(self, device) -> "MaisiNetworks":
        for network in (self.autoencoder, self.diffusion_unet, self.controlnet):
            network.to(device).eval()
        return self


def bundle_version(folder: Path) -> str:
    metadata = folder / "configs" / "metadata.json"
    if not metadata.is_file():
        raise InputError(f"{folder} is not a MONAI bundle (no configs/metadata.json). {DOWNLOAD_HINT}")
    try:
        version = str(json.loads(metadata.read_text())["version"])
    except (ValueError, KeyError):
        raise InputError(f"{metadata} has no readable 'version'; the download is incomplete. {DOWNLOAD_HINT}") from None
    try:
        major = int(version.split(".")[0])
    except ValueError:
        major = -1
    if major != SUPPORTED_MAJOR:
        raise InputError(
            f"The MAISI bundle in {folder} is version {version}; MedSynth runs version {SUPPORTED_MAJOR}.x (rectified "
            f"flow + ControlNet). Download that one: `python -m monai.bundle download {BUNDLE_NAME} --version 1.0.0 "
            f"--bundle_dir <folder>`.")
    return version


def _config(folder: Path) -> dict:
    for name in CONFIG_FILES:
        path = folder / name
        if path.is_file():
            try:
                return json.loads(path.read_text())
            except ValueError as error:
                raise InputError(f"{path} is not valid JSON ({error}): download the bundle again.") from None
    raise InputError(f"{folder} holds none of {', '.join(CONFIG_FILES)}: not a {BUNDLE_NAME} bundle. {DOWNLOAD_HINT}")


def _weights_file(folder: Path, role: str) -> Path:
    found = sorted((folder / "models").glob(WEIGHT_PATTERNS[role]))
    if not found:
        raise InputError(f"The MAISI bundle in {folder} lacks its {role} weights (models/{WEIGHT_PATTERNS[role]}). "
                         f"The download is incomplete: {DOWNLOAD_HINT}")
    return found[-1]


def _state_dict(payload, keys: tuple[str, ...]):
    if isinstance(payload, dict):
        for key in keys:
            if key in payload:
                return payload[key]
    return payload


def load_bundle(folder: str | Path | None = None, device: str = "cpu") -> MaisiNetworks:
    """The bundle's networks with their weights, checked (version, files, fit), in eval mode on ``device``."""
    import torch
    from monai.bundle import ConfigParser

    folder = bundle_folder(folder)
    version = bundle_version(folder)
    raw = _config(folder)
    missing = [key for key in ("autoencoder_def", "diffusion_unet_def", "controlnet_def", "noise_scheduler") if key not in raw]
    if missing:
        raise InputError(f"The MAISI bundle config in {folder} lacks {missing}: it is not a MAISI {SUPPORTED_MAJOR}.x "
                         f"bundle. {DOWNLOAD_HINT}")
    parser = ConfigParser({k: v for k, v in raw.items() if not str(k).startswith("trained_")})
    networks = {}
    for role, key in (("autoencoder", "autoencoder_def"), ("diffusion_unet", "diffusion_unet_def"),
                      ("controlnet", "controlnet_def")):
        network = parser.get_parsed_content(key, instantiate=True)
        path = _weights_file(folder, role)
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # noqa: BLE001 - any unreadable file gets the same advice
            raise InputError(f"{path} cannot be read ({type(error).__name__}): the download is corrupted. "
                             f"{DOWNLOAD_HINT}") from None
        state = _state_dict(payload, ("unet_state_dict", "controlnet_state_dict", "state_dict"))
        try:
            network.load_state_dict(state, strict=True)
        except RuntimeError:
            raise InputError(f"{path.name} does not fit the {role} the bundle config defines (version {version}): the "
                             f"weights belong to another MAISI version. {DOWNLOAD_HINT}") from None
        networks[role] = network
        if role == "diffusion_unet":
            scale = payload.get("scale_factor", 1.0) if isinstance(payload, dict) else 1.0
            scale_factor = float(scale)
    scheduler = parser.get_parsed_content("noise_scheduler", instantiate=True)
    latent = int(parser.get_parsed_content("latent_channels")) if "latent_channels" in raw else 4
    return MaisiNetworks(networks["autoencoder"], networks["diffusion_unet"], networks["controlnet"], scheduler,
                         scale_factor, latent, version, folder).to(device)
