"""Parameter domains as they appear in a Round: float, int, categorical, conditional."""
from __future__ import annotations

import math
from typing import Any, Iterable, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from .common import SCALAR_SCHEMA, Model, Scalar

NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"

PARAMETER_RULES = [
    {
        "rule": "self.type == 'categorical' || (has(self.min) && has(self.max))",
        "message": "float and int parameters need both min and max",
        "fieldPath": ".min",
        "reason": "FieldValueRequired",
    },
    {
        "rule": "!has(self.min) || !has(self.max) || self.min < self.max",
        "message": "min must be less than max",
        "fieldPath": ".min",
    },
    {
        "rule": "!has(self.log) || !self.log || (has(self.min) && self.min > 0.0)",
        "message": "a log domain needs min > 0",
        "fieldPath": ".min",
    },
    {
        "rule": "self.type != 'categorical' || (!has(self.min) && !has(self.max) && !has(self.log) && !has(self.step))",
        "message": "a categorical parameter takes choices, not min, max, log or step",
        "fieldPath": ".type",
    },
    *(
        {
            "rule": f"self.type != 'int' || !has(self.{field}) || self.{field} == double(int(self.{field}))",
            "message": "an int parameter needs a whole number",
            "fieldPath": f".{field}",
        }
        for field in ("min", "max", "step")
    ),
    {
        "rule": "!has(self.step) || !has(self.log) || !self.log || (self.type == 'int' && self.step == 1.0)",
        "message": "a log domain cannot have a step (except step 1 for int)",
        "fieldPath": ".step",
    },
]

"""Rules the API server checks (CEL). A real API server hides from CEL every field whose
schema has no type, and a parameter value (a choice, a fixed value) can be a string, a
number or a boolean, which no structural type allows. So rules that read `choices` or
`fixed` are checked by the models instead (`Parameter._choices_match_the_type`,
`RoundSpec._searched_not_fixed`): `kubetune validate` refuses them and the operator
reports them as Ready=False. The schema still refuses an empty or exactly repeated
choice list (minItems, x-kubernetes-list-type: set)."""

CHOICES_REQUIRED = "a categorical parameter needs at least one choice"
CHOICES_ONLY_CATEGORICAL = "choices belong to categorical parameters only; use min and max for float and int"
CHOICES_UNIQUE = "choices must be unique (trials read them as text, so 1 and \"1\" are the same choice)"


class ParameterCondition(Model):
    """Makes a parameter exist only when another one takes one of the given values."""

    parameter: str = Field(
        pattern=NAME_PATTERN, max_length=63, description="Name of the parameter this one depends on."
    )
    values: list[Any] = Field(
        min_length=1,
        max_length=64,
        description="The parameter exists only when `parameter` takes one of these values.",
        json_schema_extra={"items": SCALAR_SCHEMA},
    )

    @field_validator("values")
    @classmethod
    def _scalars(cls, v: list[Any]) -> list[Any]:
        return [_scalar(x, "values") for x in v]


class Parameter(Model):
    """One hyperparameter and its domain."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": PARAMETER_RULES})

    name: str = Field(
        pattern=NAME_PATTERN,
        max_length=63,
        description="Name of the hyperparameter, as the training code reads it (letters, digits, underscore).",
    )
    type: Literal["float", "int", "categorical"] = Field(
        description="Domain kind: float (min, max, log, step), int (min, max, step, log) or categorical (choices)."
    )
    min: float | None = Field(default=None, description="Lower bound, inclusive (float and int).")
    max: float | None = Field(default=None, description="Upper bound, inclusive (float and int).")
    log: bool | None = Field(
        default=None, description="Sample uniformly in log space; needs min > 0. Typical for learning rates."
    )
    step: float | None = Field(
        default=None,
        gt=0,
        description="Discretization step from min (int defaults to 1; float is continuous without it).",
    )
    choices: list[Any] | None = Field(
        default=None,
        max_length=64,
        description="Values of a categorical parameter (strings, numbers or booleans), unique.",
        json_schema_extra={"items": SCALAR_SCHEMA, "minItems": 1, "x-kubernetes-list-type": "set"},
    )
    when: ParameterCondition | None = Field(
        default=None,
        description="Makes this parameter conditional: it exists only when another parameter has one of the given values.",
    )

    @field_validator("choices")
    @classmethod
    def _choice_scalars(cls, v: list[Any] | None) -> list[Any] | None:
        return None if v is None else [_scalar(x, "choices") for x in v]

    @model_validator(mode="after")
    def _choices_match_the_type(self) -> "Parameter":
        if self.type == "categorical" and not self.choices:
            raise ValueError(f"choices: {CHOICES_REQUIRED}")
        if self.type != "categorical" and self.choices is not None:
            raise ValueError(f"choices: {CHOICES_ONLY_CATEGORICAL}")
        if self.choices is not None and len({env_text(c) for c in self.choices}) < len(self.choices):
            raise ValueError(f"choices: {CHOICES_UNIQUE}")
        return self

    @model_validator(mode="after")
    def _int_bounds(self) -> "Parameter":
        if self.type == "int":
            for field in ("min", "max", "step"):
                value = getattr(self, field)
                if value is not None and not float(value).is_integer():
                    raise ValueError(f"{field}: an int parameter needs a whole number, got {value}")
        for field in ("min", "max"):
            value = getattr(self, field)
            if value is not None and not math.isfinite(value):
                raise ValueError(f"{field}: must be a finite number, got {value}")
        return self


def env_text(value: Any) -> str:
    """A value as a trial reads it from its environment variable (true, not True)."""
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _scalar(value: Any, field: str) -> Scalar:
    if isinstance(value, (bool, int, float, str)):
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{value} is not a finite number")
        return value
    raise ValueError(f"{value!r} is not a string, number or boolean")


def check_env_name(name: str, others: Iterable[str], where: str | None = None) -> None:
    """Refuse a parameter name that differs from another only in case: a trial reads both
    from the same environment variable, KUBETUNE_PARAM_<NAME>."""
    for other in others:
        if other != name and other.upper() == name.upper():
            raise ValueError(f"{where or name}: '{name}' and '{other}' differ only in case; a trial would read "
                             f"both from KUBETUNE_PARAM_{name.upper()}")


def check_env_names(values: dict[str, Any]) -> dict[str, Any]:
    """A map of parameter values (a baseline, a Round's fixed values) whose names differ in more than case."""
    names = list(values)
    for i, name in enumerate(names):
        check_env_name(name, names[:i])
    return values


def check_scalar_map(values: dict[str, Any], field: str) -> dict[str, Scalar]:
    """Check that a map of parameter values holds only scalars with valid names."""
    import re

    out: dict[str, Scalar] = {}
    for key, value in values.items():
        if not re.match(NAME_PATTERN, key):
            raise ValueError(f"{key}: parameter names use letters, digits and underscore")
        try:
            out[key] = _scalar(value, key)
        except ValueError as e:
            raise ValueError(f"{key}: {e}") from None
    return out
