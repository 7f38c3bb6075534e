"""Champion / challenger: when a newly trained model replaces the one in service.

A challenger is promoted only if it beats the champion on the *same* out-of-sample window by
the family's primary metric (log loss for direction, QLIKE for volatility, balanced accuracy for
regime). The champion is re-scored on the current window by the caller, so a champion measured
on an older, easier window cannot win or lose on that account.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

PRIMARY_METRIC = {
    "direction": ("log_loss", False),
    "volatility": ("qlike", False),
    "regime": ("balanced_accuracy", True),
}


@dataclass(frozen=True)
class PromotionDecision:
    promote: bool
    reason: str
    metric: str
    challenger: float
    champion: float | None


def decide_promotion(
    family: str, challenger: float, champion: float | None, min_improvement: float = 0.0
) -> PromotionDecision:
    """Whether the challenger's score on the shared window beats the champion's.

    No champion yet → the first model becomes champion. A non-finite challenger score never wins.
    ``min_improvement`` is the margin required (in metric units) before a swap.
    """
    metric, higher_is_better = PRIMARY_METRIC[family]
    if champion is None:
        return PromotionDecision(True, "no champion yet", metric, challenger, None)
    if not math.isfinite(challenger):
        return PromotionDecision(
            False, f"challenger {metric} is not finite", metric, challenger, champion
        )
    gain = challenger - champion if higher_is_better else champion - challenger
    if not math.isfinite(champion) or gain > min_improvement:
        return PromotionDecision(
            True,
            f"challenger {metric} {challenger:.5f} beats champion {champion:.5f}",
            metric,
            challenger,
            champion,
        )
    return PromotionDecision(
        False,
        f"challenger {metric} {challenger:.5f} does not beat champion {champion:.5f}",
        metric,
        challenger,
        champion,
    )
