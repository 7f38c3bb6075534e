"""Out-of-sample evaluation: metrics, significance against baselines, and plots (no Dagster).

classification_metrics, information_coefficient, daily_rank_ic   (classification)
qlike_loss, volatility_metrics                                   (volatility)
block_bootstrap_indices, compare_to_baseline, Comparison,
diebold_mariano                                                  (significance)
plots: confusion_matrix_png, calibration_png, forecast_vs_realized_png,
       feature_importance_png, line_png, markdown_image
"""

from quant.evaluation import plots
from quant.evaluation.classification import (
    classification_metrics,
    daily_rank_ic,
    information_coefficient,
)
from quant.evaluation.plots import (
    calibration_png,
    confusion_matrix_png,
    feature_importance_png,
    forecast_vs_realized_png,
    line_png,
    markdown_image,
)
from quant.evaluation.significance import (
    Comparison,
    block_bootstrap_indices,
    compare_to_baseline,
    diebold_mariano,
)
from quant.evaluation.volatility import qlike_loss, volatility_metrics

__all__ = [
    "Comparison",
    "block_bootstrap_indices",
    "calibration_png",
    "classification_metrics",
    "compare_to_baseline",
    "confusion_matrix_png",
    "daily_rank_ic",
    "diebold_mariano",
    "feature_importance_png",
    "forecast_vs_realized_png",
    "information_coefficient",
    "line_png",
    "markdown_image",
    "plots",
    "qlike_loss",
    "volatility_metrics",
]
