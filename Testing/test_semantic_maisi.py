"""MAISI as a backend: label mapping to MAISI's dictionary, loading a bundle (here one written by the
test with small randomly initialised networks of MAISI's own MONAI classes), the registry, CLI and
module paths, and the errors for missing/wrong weights and a GPU too small."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("monai")

from medsynth.errors import DeviceError, InputError  # noqa: E402
from medsynth.generative.maisi import presets  # noqa: E402
from medsynth.generative.maisi.labels import map_to_maisi, maisi_labels, maisi_name  # noqa: E402

TINY = {
    "spatial_dims": 3, "image_channels": 1, "latent_channels": 4,
    "autoencoder_def": {
        "_target_": "monai.apps.generation.maisi.networks.autoencoderkl_maisi.AutoencoderKlMaisi",
        "spatial_dims": "@spatial_dims", "in_channels": "@image_channels", "out_channels": "@image_channels",
        "latent_channels": "@latent_channels", "num_channels": [8, 8, 8], "num_res_blocks": [1, 1, 1],
        "norm_num_groups": 4, "norm_eps": 1e-6, "attention_levels": [False, False, False],
        "with_encoder_nonlocal_attn": False, "with_decoder_nonlocal_attn": False, "use_checkpointing": False,
        "use_convtranspose": False, "norm_float16": False, "num_splits": 1, "dim_split": 1},
    "diffusion_unet_def": {
        "_target_": "monai.apps.generation.maisi.networks.diffusion_model_unet_maisi.DiffusionModelUNetMaisi",
        "spatial_dims": "@spatial_dims", "in_channels": "@latent_channels", "out_channels": "@latent_channels",
        "num_channels": [8, 16], "attention_levels": [False, True], "num_head_channels": [0, 8], "num_res_blocks": 1,
        "norm_num_groups": 4, "use_flash_attention": False, "include_top_region_index_input": False,
        "include_bottom_region_index_input": False, "include_spacing_input": True, "num_class_embeds": 128,
        "resblock_updown": True, "include_fc": True},
    "controlnet_def": {
        "_target_": "monai.apps.generation.maisi.networks.controlnet_maisi.ControlNetMaisi",
        "spatial_dims": "@spatial_dims", "in_channels": "@latent_channels", "num_channels": [8, 16],
        "attention_levels": [False, True], "num_head_channels": [0, 8], "num_res_blocks": 1, "norm_num_groups": 4,
        "use_flash_attention": False, "conditioning_embedding_in_channels": 8,
        "conditioning_embedding_num_channels": [8, 8, 8], "num_class_embeds": 128, "resblock_updown": True,
        "include_fc": True},
    "noise_scheduler": {"_target_": "monai.networks.schedulers.rectified_flow.RFlowScheduler",
                        "num_train_timesteps": 1000, "use_discrete_timesteps": False, "use_timestep_transform": True,
                        "sample_method": "uniform"},
}
TINY_PRESET = presets.MaisiPreset("test_32", 1, (32, 32, 32), (12.0, 12.0, 12.0), (32, 32, 32), 0.25, 1)


def write_bundle(folder, version="1.0.0", config=TINY, seed=0):
    """A bundle folder laid out like maisi_ct_generative, with random weights of the given networks."""
    from monai.bundle import ConfigParser

    torch.manual_seed(seed)
    (folder / "configs").mkdir(parents=True)
    (folder / "models").mkdir()
    (folder / "configs" / "metadata.json").write_text(json.dumps({"version": version, "name": "maisi_ct_generative"}))
    (folder / "configs" / "inference.json").write_text(json.dumps(config))
    parser = ConfigParser(config)
    torch.save(parser.get_parsed_content("autoencoder_def").state_dict(), folder / "models" / "autoencoder_v1.pt")
    torch.save({"unet_state_dict": parser.get_parsed_content("diffusion_unet_def").state_dict(), "scale_factor": 1.2},
               folder / "models" / "diff_unet_3d_rflow-ct.pt")
    torch.save({"controlnet_state_dict": parser.get_parsed_content("controlnet_def").state_dict()},
               folder / "models" / "controlnet_3d_rflow-ct.pt")
    return folder


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return write_bundle(tmp_path_factory.mktemp("maisi") / "maisi_ct_generative")


@pytest.fixture(scope="module")
def small_labels(lidc_labels):
    """LIDC-IDRI-0001's label map at every 4th voxel in-plane (2.8 mm): the same anatomy, 16x fewer voxels."""
    from medsynth.volume import LabelMap

    matrix = lidc_labels.ijk_to_ras.copy()
    matrix[:3, :2] *= 4
    return LabelMap(np.ascontiguousarray(lidc_labels.array[:, ::4, ::4]), matrix, lidc_labels.metadata, lidc_labels.table)


@pytest.fixture
def tiny_preset(monkeypatch):
    monkeypatch.setitem(presets.PRESETS, TINY_PRESET.name, TINY_PRESET)
    return TINY_PRESET.name


def test_totalsegmentator_and_slicer_names_map_to_maisi_indices():
    labels = maisi_labels()
    assert labels["liver"] == 1 and labels["vertebrae L1"] == 37 and labels["airway"] == 132
    expected = {"kidney_left": 14, "Left kidney": 14, "vertebrae_L1": 37, "lung_upper_lobe_left": 28,
                "rib_right_12": 86, "urinary_bladder": 15, "heart": 115, "portal_vein_and_splenic_vein": 17,
                "iliac_vena_left": 60, "gluteus_maximus_right": 99, "costal_cartilages": 114}
    for name, index in expected.items():
        assert labels[maisi_name(name)] == index, name
    names = dict(enumerate(expected, start=1))
    mapping = map_to_maisi(names)
    assert [mapping.source_to_class[value] for value in names] == list(expected.values())
    # a structure MAISI has only coarsely goes to its group; an unknown one is named with the fix
    assert map_to_maisi({1: "heart_myocardium"}).source_to_class[1] == 115
    with pytest.raises(InputError, match="my_implant"):
        map_to_maisi({1: "liver", 2: "my_implant"})
    assert map_to_maisi({1: "my_implant"}, {"my_implant": "bone"}).source_to_class[1] == labels["bone"]
    assert map_to_maisi({1: "my_implant"}, unknown="background").source_to_class[1] == 0


def test_lidc_label_map_maps_completely():
    from medsynth.io import read_labelmap

    pytest.importorskip("SimpleITK")
    from medsynth.data import fetch

    lidc = fetch("lidc")
    labels = read_labelmap(lidc / "labels.nii.gz", lidc / "structures.csv")
    names = {value: labels.table.name(value) for value in labels.present_labels()}
    mapping = map_to_maisi(names)
    assert not mapping.unknown and len(mapping.source_to_class) == len(names)
    assert mapping.source_to_class[5] == maisi_labels()["liver"]  # LIDC's liver label


def test_bundle_generates_a_ct_on_the_label_maps_grid(bundle, small_labels):
    from medsynth.generative.maisi.bundle import load_bundle
    from medsynth.generative.maisi.pipeline import generate_maisi

    networks = load_bundle(bundle)
    assert networks.version == "1.0.0" and networks.scale_factor == pytest.approx(1.2)
    steps = []
    a = generate_maisi(small_labels, networks, TINY_PRESET, steps=2, seed=1, device="cpu",
                       progress=lambda f, m: steps.append(m))
    assert a.array.shape == small_labels.array.shape and np.allclose(a.ijk_to_ras, small_labels.ijk_to_ras)
    inside = a.array > -1024
    assert inside.mean() > 0.5 and a.array[inside].min() >= -1000 and a.array.max() <= 1000
    assert a.metadata.extra["preset"] == "test_32" and a.metadata.extra["synthetic"]
    assert "MAISI step 2/2" in steps and "decoding" in steps
    again = generate_maisi(small_labels, networks, TINY_PRESET, steps=2, seed=1, device="cpu")
    other = generate_maisi(small_labels, networks, TINY_PRESET, steps=1, seed=2, device="cpu")
    assert np.array_equal(a.array, again.array) and not np.array_equal(a.array, other.array)


def test_registry_cli_and_module_run_maisi(bundle, small_labels, lidc_dir, tiny_preset, tmp_path, monkeypatch, capsys):
    from medsynth.cli.main import main
    from medsynth.generative.parameters import SemanticParameters
    from medsynth.generative.registry import get_model
    from medsynth.module_logic.semantic import SemanticLogic

    entry = get_model("maisi-ct")
    assert entry.family == "maisi" and "not redistributable" in entry.licence and "GB" in entry.hardware
    assert "Hardware: CUDA GPU" in entry.describe()
    with pytest.raises(InputError, match="bundle you download"):
        entry.weights()
    assert main(["generate", "--list"]) == 0
    listed = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("maisi-ct"))
    assert "hardware: CUDA GPU" in listed and "not redistributable" in listed and "(133)" in listed
    from medsynth.io import write_volume

    out = tmp_path / "cli"
    labels_file = write_volume(small_labels, tmp_path / "labels.nii.gz")
    table = lidc_dir / "structures.csv"
    code = main(["generate", "--model", "maisi-ct", "--labels", str(labels_file), "--table",
                 str(table), "--maisi-bundle", str(bundle), "--maisi-preset", tiny_preset,
                 "--steps", "1", "--out", str(out), "--quiet"])
    assert code == 0 and (out / "sample_00.nii.gz").is_file() and (out / "sample_00.png").is_file()
    summary = json.loads((out / "generation.json").read_text())
    assert any("liver" in line for line in summary["class_mapping"])
    monkeypatch.setenv("MEDSYNTH_MAISI_BUNDLE", str(bundle))  # the module finds the bundle from the environment
    [volume] = SemanticLogic.run(small_labels, SemanticParameters(model_id="maisi-ct", steps=1, maisi_preset=tiny_preset))
    assert volume.array.shape == small_labels.array.shape and volume.metadata.extra["family"] == "maisi"


def test_bad_bundles_and_small_gpus_are_clear_errors(tmp_path, bundle, small_labels, monkeypatch):
    import shutil

    from medsynth.generative.inference import generate
    from medsynth.generative.maisi.bundle import load_bundle

    monkeypatch.delenv("MEDSYNTH_MAISI_BUNDLE", raising=False)
    monkeypatch.setenv("MEDSYNTH_SETTINGS", str(tmp_path / "settings.json"))
    with pytest.raises(InputError, match="No MAISI bundle is set.*monai.bundle download maisi_ct_generative"):
        load_bundle()
    with pytest.raises(InputError, match="does not exist"):
        load_bundle(tmp_path / "nowhere")
    old = write_bundle(tmp_path / "old", version="0.4.6")
    with pytest.raises(InputError, match="version 0.4.6; MedSynth runs version 1.x"):
        load_bundle(old)
    partial = tmp_path / "partial"
    shutil.copytree(bundle, partial)
    next((partial / "models").glob("controlnet*.pt")).unlink()
    with pytest.raises(InputError, match="lacks its controlnet weights"):
        load_bundle(partial)
    other = json.loads(json.dumps(TINY))
    other["autoencoder_def"]["num_channels"] = [8, 16, 16]
    mixed = write_bundle(tmp_path / "mixed", config=other)
    (mixed / "configs" / "inference.json").write_text(json.dumps(TINY))  # weights of another architecture
    with pytest.raises(InputError, match="does not fit the autoencoder"):
        load_bundle(mixed)
    with pytest.raises(InputError, match="whole volumes"):
        generate(small_labels, "maisi-ct", slices="10..20", maisi_bundle=str(bundle))
    with pytest.raises(DeviceError, match="needs 24 GB of GPU memory, but the GPU has 20.0 GB: choose preset 16g_"):
        presets.check_gpu_memory(presets.PRESETS["24g_512x512x512"], 20 * 1024 ** 3)
    with pytest.raises(DeviceError, match="at least 16 GB"):
        presets.check_gpu_memory(presets.PRESETS["16g_256x256x128"], 8 * 1024 ** 3)
    presets.check_gpu_memory(presets.PRESETS["80g_512x512x512"], int(79.6 * 1024 ** 3))  # an "80 GB" card
    with pytest.raises(InputError, match="Unknown MAISI preset"):
        presets.get_preset("8g")
