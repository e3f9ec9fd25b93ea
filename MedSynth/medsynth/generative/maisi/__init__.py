"""MAISI (MONAI's 3D latent diffusion label-map -> CT model) as a backend for users with a big GPU.

MedSynth ships no MAISI weights (NVIDIA's licence forbids redistributing them): the user downloads
MONAI's ``maisi_ct_generative`` bundle and points MedSynth at its folder. ``labels`` maps a
Slicer/TotalSegmentator segmentation onto MAISI's label dictionary, ``presets`` holds MAISI's
documented memory presets, ``bundle`` loads and checks the networks, ``pipeline`` generates.
"""
