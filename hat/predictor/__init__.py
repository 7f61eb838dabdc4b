"""Latency predictors: features, models, the saved artifact and its loader (see docs/design.md)."""

from hat.predictor.features import FEATURE_KINDS, FeatureSchema
from hat.predictor.metrics import kendall_tau, regression_metrics
from hat.predictor.models import DEFAULT_MODEL, MODELS, model_kinds, register_predictor_model
from hat.predictor.predictor import LatencyPredictor, cv_fold_indices, fit_predictor, load_predictor, split_indices

__all__ = ["FEATURE_KINDS", "FeatureSchema", "kendall_tau", "regression_metrics", "DEFAULT_MODEL", "MODELS",
           "model_kinds", "register_predictor_model", "LatencyPredictor", "cv_fold_indices", "fit_predictor",
           "load_predictor", "split_indices"]
