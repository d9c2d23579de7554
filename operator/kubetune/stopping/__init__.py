"""Early-stopping rules: pure functions of learning curves.

- `median`: the median stopping rule of Google Vizier (Golovin et al. 2017).
- `curvefit`: extrapolate the partial curve with an ensemble of learning-curve
  families (`extrapolation`), calibrated on the Round's finished trials that looked
  like it at the same step (`calibration`).
- `pruners`: both as optuna pruners, to compare with optuna's own on equal terms.

Curves here are sequences of (step, value) pairs; `direction` says whether lower
(minimize) or higher (maximize) is better.
"""
from .base import Curve, Decision, oriented
from .curvefit import CurveFitRule
from .extrapolation import predict_final
from .median import MedianRule
from .pruners import CurveFitPruner, MedianStoppingPruner

__all__ = ["Curve", "Decision", "oriented", "CurveFitRule", "predict_final", "MedianRule",
           "CurveFitPruner", "MedianStoppingPruner"]
