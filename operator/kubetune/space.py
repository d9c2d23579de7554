"""Search spaces: a Round's parameters as optuna distributions, and back.

Also the geometry the analysis needs: where a value lies inside its domain
(in log space for log domains), so "the best trials crowd the upper edge" can
be said the same way for a learning rate and for a dropout rate.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import optuna.distributions as od

from .api import Parameter, RoundSpec, Study, StudySpec
from .api.common import Scalar


@dataclass(frozen=True)
class SearchSpace:
    """The searched parameters of a Round, in sampling order (parents before children)."""

    parameters: tuple[Parameter, ...]
    scientific: frozenset[str]

    @classmethod
    def of(cls, spec: RoundSpec) -> "SearchSpace":
        params = [*spec.scientific, *spec.nuisance]
        ordered = [p for p in params if p.when is None] + [p for p in params if p.when is not None]
        return cls(tuple(ordered), frozenset(p.name for p in spec.scientific))

    def by_name(self, name: str) -> Parameter:
        return next(p for p in self.parameters if p.name == name)

    def active(self, param: Parameter, values: dict[str, Any]) -> bool:
        """Does the parameter exist given the values chosen so far (its condition holds)?"""
        if param.when is None:
            return True
        return values.get(param.when.parameter) in param.when.values

    def distributions(self) -> dict[str, od.BaseDistribution]:
        return {p.name: distribution(p) for p in self.parameters}

    def grid(self, points_per_axis: int = 5) -> list[dict[str, Scalar]]:
        """A full grid over the (active) parameters: choices, int steps, or evenly spaced floats."""
        combos: list[dict[str, Scalar]] = [{}]
        for p in self.parameters:
            out: list[dict[str, Scalar]] = []
            for combo in combos:
                if not self.active(p, combo):
                    out.append(combo)
                    continue
                for v in axis_values(p, points_per_axis):
                    out.append({**combo, p.name: v})
            combos = out
        return combos


def distribution(p: Parameter) -> od.BaseDistribution:
    if p.type == "categorical":
        return od.CategoricalDistribution(list(p.choices or []))
    assert p.min is not None and p.max is not None
    if p.type == "int":
        return od.IntDistribution(int(p.min), int(p.max), log=bool(p.log), step=int(p.step or 1))
    return od.FloatDistribution(p.min, p.max, log=bool(p.log), step=p.step)


def parameter_from(name: str, dist: od.BaseDistribution) -> Parameter:
    """The inverse of `distribution`: an optuna distribution as a Round parameter."""
    if isinstance(dist, od.CategoricalDistribution):
        return Parameter(name=name, type="categorical", choices=list(dist.choices))
    if isinstance(dist, od.IntDistribution):
        return Parameter(
            name=name, type="int", min=dist.low, max=dist.high,
            log=dist.log or None, step=None if dist.step == 1 else dist.step,
        )
    if isinstance(dist, od.FloatDistribution):
        return Parameter(name=name, type="float", min=dist.low, max=dist.high, log=dist.log or None, step=dist.step)
    raise TypeError(f"{name}: unsupported distribution {type(dist).__name__}")


def axis_values(p: Parameter, points: int) -> list[Scalar]:
    if p.type == "categorical":
        return list(p.choices or [])
    assert p.min is not None and p.max is not None
    if p.type == "int":
        step = int(p.step or 1)
        values = list(range(int(p.min), int(p.max) + 1, step))
        if len(values) <= points:
            return list(values)
        idx = sorted({round(i * (len(values) - 1) / (points - 1)) for i in range(points)})
        return [values[i] for i in idx]
    lo, hi = (math.log(p.min), math.log(p.max)) if p.log else (p.min, p.max)
    vals = [lo + (hi - lo) * i / (points - 1) for i in range(points)]
    return [float(math.exp(v)) if p.log else float(v) for v in vals]


def position(p: Parameter, value: Any) -> float | None:
    """Where a value lies in its domain, 0 at min and 1 at max (log space for log domains).

    None for categorical parameters, which have no edges."""
    if p.type == "categorical" or p.min is None or p.max is None or value is None:
        return None
    v = float(value)
    if p.log:
        lo, hi, v = math.log(p.min), math.log(p.max), math.log(max(v, p.min))
    else:
        lo, hi = p.min, p.max
    return min(1.0, max(0.0, (v - lo) / (hi - lo)))


def current_baseline(study: Study) -> dict[str, Scalar]:
    """The baseline in force: the spec's, updated by configurations adopted since."""
    return {**study.spec.baseline, **study.status.baseline}


class ParameterNameClash(ValueError):
    """A Round names a parameter the Study's baseline spells in another case."""


def name_clashes(study: Study, round_spec: RoundSpec) -> list[str]:
    """The Round's parameter names (searched or fixed) that the baseline in force spells
    in another case: a trial would read both from one KUBETUNE_PARAM_<NAME> variable,
    while its KUBETUNE_PARAMS carried both, the baseline's value under the other name.
    (Within a Round and within a baseline the API refuses such names already.)"""
    baseline = {name.upper(): name for name in current_baseline(study)}
    mine = [p.name for p in SearchSpace.of(round_spec).parameters] + list(round_spec.fixed)
    return [
        f"the Round's parameter '{name}' and the Study baseline's '{baseline[name.upper()]}' differ only in "
        f"case; a trial would read both from KUBETUNE_PARAM_{name.upper()}: spell them alike"
        for name in mine if baseline.get(name.upper(), name) != name
    ]


def check_names(study: Study, round_spec: RoundSpec) -> None:
    """Refuse a Round whose parameter names clash with the Study's baseline (see name_clashes)."""
    found = name_clashes(study, round_spec)
    if found:
        raise ParameterNameClash("; ".join(found))


def effective_parameters(study: Study | StudySpec, round_spec: RoundSpec, sampled: dict[str, Any]) -> dict[str, Scalar]:
    """Study baseline (as adopted so far), overridden by the Round's fixed values,
    overridden by sampled values.

    A conditional parameter that is inactive is left out, even if the baseline names it,
    so the training code never sees a momentum it must ignore."""
    space = SearchSpace.of(round_spec)
    baseline = current_baseline(study) if isinstance(study, Study) else study.baseline
    merged: dict[str, Any] = {**baseline, **round_spec.fixed, **sampled}
    for p in space.parameters:
        if p.name in merged and not space.active(p, merged):
            del merged[p.name]
    return merged
