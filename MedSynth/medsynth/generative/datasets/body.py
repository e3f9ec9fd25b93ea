"""The patient's body on a CT: everything else (the table, cushions, cables, air) is background.

Generative models learn whatever the training slices show; removing the CT table and equipment
outside the body (as the medical OASIS variant did) keeps them from painting tables into images.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from medsynth.volume import Volume


def body_mask(ct: Volume, threshold_hu: float = -500.0) -> np.ndarray:
    """Boolean mask [k, j, i] of the body: the largest tissue component, holes (lungs, bowel gas) filled.

    A thin opening first cuts the table's contact with the back; the largest 3D connected
    component is the patient; each axial slice's holes are then filled so lungs count as body.
    """
    ct.require_hu()
    tissue = np.asarray(ct.array) > threshold_hu
    opening = np.zeros((1, 5, 5), bool)
    opening[0, 1:4, 1:4] = True  # 3x3 in-plane, not across slices (thick slices)
    opened = ndimage.binary_opening(tissue, structure=opening)
    components, count = ndimage.label(opened)
    if count == 0:
        return np.zeros(tissue.shape, bool)
    sizes = ndimage.sum_labels(np.ones_like(components), components, index=np.arange(1, count + 1))
    body = components == (int(np.argmax(sizes)) + 1)
    body = ndimage.binary_dilation(body, structure=opening) & tissue | body
    filled = np.empty_like(body)
    for k in range(body.shape[0]):
        filled[k] = ndimage.binary_fill_holes(body[k])
    return filled


def remove_background(ct: Volume, mask: np.ndarray, air_hu: float = -1000.0) -> Volume:
    """The CT with everything outside ``mask`` set to air."""
    array = np.where(mask, ct.array, np.asarray(air_hu, dtype=ct.array.dtype))
    return ct.with_array(array)
