"""A simple texture classifier for the generative benchmark: can GLCM and gradient statistics of liver
and lung patches tell generated CT slices from real ones? (issue 15: AUC <= 0.75 is the target).

Features per 32 x 32 patch (inside one organ): grey-level co-occurrence statistics (contrast,
homogeneity, energy, correlation; 16 grey levels of a -200..300 HU window, offsets right and down),
gradient-magnitude mean and spread, intensity spread. Classifier: L2 logistic regression (scipy's
L-BFGS), 5-fold cross-validation grouped by slice so no slice's patches sit on both sides. AUC by
the Mann-Whitney rank statistic.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage, optimize, stats

PATCH = 32
LEVELS = 16
WINDOW = (-200.0, 300.0)


def glcm_features(patch: np.ndarray) -> list[float]:
    q = np.clip(((patch - WINDOW[0]) / (WINDOW[1] - WINDOW[0]) * LEVELS).astype(int), 0, LEVELS - 1)
    features = []
    i, j = np.meshgrid(np.arange(LEVELS), np.arange(LEVELS), indexing="ij")
    for a, b in ((q[:, :-1], q[:, 1:]), (q[:-1, :], q[1:, :])):
        matrix = np.zeros((LEVELS, LEVELS))
        np.add.at(matrix, (a.ravel(), b.ravel()), 1)
        matrix = matrix + matrix.T
        p = matrix / matrix.sum()
        mu_i, mu_j = (i * p).sum(), (j * p).sum()
        sd_i, sd_j = np.sqrt(((i - mu_i) ** 2 * p).sum()), np.sqrt(((j - mu_j) ** 2 * p).sum())
        features += [float(((i - j) ** 2 * p).sum()), float((p / (1 + np.abs(i - j))).sum()), float((p ** 2).sum()),
                     float(((i - mu_i) * (j - mu_j) * p).sum() / max(sd_i * sd_j, 1e-9))]
    return features


def patch_features(patch: np.ndarray) -> np.ndarray:
    gradient = np.hypot(ndimage.sobel(patch, 0), ndimage.sobel(patch, 1))
    return np.array(glcm_features(patch) + [float(gradient.mean()), float(gradient.std()), float(patch.std())])


def organ_patches(images: np.ndarray, labels: np.ndarray, classes: tuple[int, ...], stride: int = 24):
    """(features [N, F], slice index [N]) of patches at least 90 % inside one of ``classes``."""
    rows, groups = [], []
    for index, (image, label) in enumerate(zip(images, labels)):
        for value in classes:
            mask = label == value
            if mask.sum() < PATCH * PATCH:
                continue
            for r in range(0, image.shape[0] - PATCH + 1, stride):
                for c in range(0, image.shape[1] - PATCH + 1, stride):
                    if mask[r:r + PATCH, c:c + PATCH].mean() >= 0.9:
                        rows.append(patch_features(image[r:r + PATCH, c:c + PATCH].astype(np.float64)))
                        groups.append(index)
    return np.array(rows), np.array(groups)


def _fit(x: np.ndarray, y: np.ndarray, l2: float = 1.0) -> np.ndarray:
    def loss(w):
        z = x @ w[1:] + w[0]
        return float(np.logaddexp(0, z).sum() - (y * z).sum() + 0.5 * l2 * (w[1:] ** 2).sum())

    def grad(w):
        z = x @ w[1:] + w[0]
        r = 1 / (1 + np.exp(-z)) - y
        return np.concatenate([[r.sum()], x.T @ r + l2 * w[1:]])

    return optimize.minimize(loss, np.zeros(x.shape[1] + 1), jac=grad, method="L-BFGS-B").x


def auc(scores: np.ndarray, y: np.ndarray) -> float:
    positive, negative = scores[y == 1], scores[y == 0]
    u = stats.mannwhitneyu(positive, negative).statistic
    return float(u / (len(positive) * len(negative)))


def texture_auc(real: tuple[np.ndarray, np.ndarray], fake: tuple[np.ndarray, np.ndarray], folds: int = 5,
                seed: int = 0) -> float:
    """Cross-validated AUC of real-vs-generated patches (0.5: indistinguishable, 1: always told apart)."""
    (xr, gr), (xf, gf) = real, fake
    if not len(xr) or not len(xf):
        return float("nan")
    x = np.concatenate([xr, xf])
    y = np.concatenate([np.zeros(len(xr)), np.ones(len(xf))])
    groups = np.concatenate([gr, gf + gr.max() + 1])
    order = np.random.default_rng(seed).permutation(np.unique(groups))
    fold_of = {g: i % folds for i, g in enumerate(order)}
    fold = np.array([fold_of[g] for g in groups])
    scores = np.zeros(len(y))
    for k in range(folds):
        train, test = fold != k, fold == k
        if not test.any() or len(np.unique(y[train])) < 2:
            continue
        mean, sd = x[train].mean(0), x[train].std(0) + 1e-9
        w = _fit((x[train] - mean) / sd, y[train])
        scores[test] = ((x[test] - mean) / sd) @ w[1:] + w[0]
    return auc(scores, y)
