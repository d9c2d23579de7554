"""The kubetune.io/v1alpha1 resources: typed models, the single source of truth for the CRDs."""
from .common import API_VERSION, CATEGORY, GROUP, VERSION, Condition, get_condition, set_condition
from .parameters import Parameter, ParameterCondition
from .round import Round, RoundSpec, RoundStatus
from .settings import Algorithm, Budget, EarlyStopping, Reruns, RoundDefaults
from .study import Study, StudySpec, StudyStatus
from .trial import FINISHED, Trial, TrialSpec, TrialStatus

RESOURCES = (Study, Round, Trial)

__all__ = [
    "API_VERSION", "CATEGORY", "GROUP", "VERSION", "Condition", "get_condition", "set_condition",
    "Parameter", "ParameterCondition", "Round", "RoundSpec", "RoundStatus", "Algorithm", "Budget",
    "EarlyStopping", "Reruns", "RoundDefaults", "Study", "StudySpec", "StudyStatus", "FINISHED",
    "Trial", "TrialSpec", "TrialStatus", "RESOURCES",
]
