"""Standardization fitted on training rows only (the test split never shapes the scaling)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CLIP = 8.0


@dataclass
class Standardizer:
    """Per-feature mean and deviation from the rows it was fitted on; transforms to clipped
    z-scores with missing values at 0 (the training mean), so networks and forests see no NaN."""

    mean: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray) -> Standardizer:
        """Fit on ``x`` (rows = training samples). All-missing columns get mean 0, scale 1."""
        with np.errstate(all="ignore"):
            mean = np.nanmean(x, axis=0)
            scale = np.nanstd(x, axis=0)
        mean = np.where(np.isfinite(mean), mean, 0.0)
        scale = np.where(np.isfinite(scale) & (scale > 0), scale, 1.0)
        return cls(mean, scale)

    def transform(self, x: np.ndarray) -> np.ndarray:
        z = np.clip((x - self.mean) / self.scale, -CLIP, CLIP)
        return np.nan_to_num(z, nan=0.0).astype(np.float32)
