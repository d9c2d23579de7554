"""Round settings that a Study can default: algorithm, budget, early stopping, re-runs."""
from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field

from .common import Model

ALGORITHMS = ("sobol", "random", "grid", "tpe", "gp", "cmaes")
STOPPING_RULES = ("none", "median", "curvefit")
MIN_LOOK_ALIKES = 5  # stopping.calibration.MIN_CALIBRATION: the API does not import the rules


class Algorithm(Model):
    """How the Round chooses the next configuration."""

    name: Literal["sobol", "random", "grid", "tpe", "gp", "cmaes"] = Field(
        default="sobol",
        description=(
            "Search algorithm: sobol (quasi-random, the default for exploration), random, grid, "
            "tpe, gp (Bayesian optimization) or cmaes."
        ),
    )
    seed: int | None = Field(
        default=None, ge=0, description="Seed of the sampler; the same seed and trials give the same suggestions."
    )
    startup_trials: int | None = Field(
        default=None,
        ge=0,
        description="Bayesian algorithms (tpe, gp, cmaes) start with this many quasi-random trials (default 10).",
    )


BUDGET_RULES = [
    {
        "rule": "!has(self.parallelism) || !has(self.maxTrials) || self.parallelism <= self.maxTrials",
        "message": "parallelism cannot exceed maxTrials",
        "fieldPath": ".parallelism",
    }
]


class Budget(Model):
    """How much the Round may spend."""

    model_config = ConfigDict(json_schema_extra={"x-kubernetes-validations": BUDGET_RULES})

    max_trials: int | None = Field(
        default=None, ge=1, le=10000, description="Number of search trials to run (default 20)."
    )
    parallelism: int | None = Field(
        default=None, ge=1, le=1000, description="Trials running at the same time (default 2)."
    )
    max_failed_trials: int | None = Field(
        default=None,
        ge=0,
        description="The Round fails and creates no more trials once this many trials failed (default 3). Infeasible trials do not count.",
    )
    max_retries: int | None = Field(
        default=None,
        ge=0,
        le=100,
        description="Times a trial whose pod was evicted or preempted is started again before it counts as failed (default 3).",
    )


class EarlyStopping(Model):
    """Stop trials that are very unlikely to matter, and save their GPU hours."""

    rule: Literal["none", "median", "curvefit"] = Field(
        default="none",
        description=(
            "none; median (stop a trial whose best value so far is worse than the median of the other "
            "trials' running averages at the same step); curvefit (extrapolate the curve to maxSteps and "
            "stop when beating the best finished trial is very unlikely)."
        ),
    )
    start_step: int | None = Field(
        default=None, ge=0, description="No trial is stopped before it reports this step (default: 10% of maxSteps)."
    )
    min_trials: int | None = Field(
        default=None,
        ge=1,
        description="Trials that must have reached the step (median) or finished (curvefit) before any stop (default 3).",
    )
    interval: int | None = Field(
        default=None, ge=1, description="Evaluate the rule at most every this many steps (default 1)."
    )
    probability: float | None = Field(
        default=None,
        gt=0,
        lt=1,
        description=(
            "curvefit: stop when the probability to beat the best value seen in the Round falls below this "
            "(default 0.003; see medianProbability and leaderProbability). The probability is calibrated on the "
            "Round's finished trials: how the same extrapolation fared on those that looked like this one at "
            "the same step; curve fitting stops nothing of its own before minLookAlikes finished trials "
            "reached that step (see runningQuantile for the stops before)."
        ),
    )
    margin: float | None = Field(
        default=None,
        ge=0,
        description="curvefit: relative margin a trial must beat the best value by to count as better (default 0).",
    )
    median_probability: float | None = Field(
        default=None,
        ge=0,
        lt=1,
        description=(
            "curvefit: the threshold instead of probability for a trial whose best value so far is worse than "
            "the median of the other trials that went on past the same step (of those that reached it while "
            "fewer than five went past; default 0, off; never below probability). Finished trials, "
            "which calibrate the probability, are survivors; where a trial stands among the trials at its step "
            "is a second opinion that does not depend on who finished. Below that median the probability is "
            "also scaled by (f + 1) / 13, f of the 12 trials that stood nearest it at the step and went on past "
            "it having finished rather than been stopped later."
        ),
    )
    leader_probability: float | None = Field(
        default=None,
        ge=0,
        lt=1,
        description=(
            "curvefit: the threshold instead of probability for a trial whose best value so far is better than "
            "that of all but a tenth of the other trials at the same step (default 0.0005; never above "
            "probability, 0 never stops such a trial)."
        ),
    )
    min_look_alikes: int | None = Field(
        default=None,
        ge=MIN_LOOK_ALIKES,
        le=1000,
        description=(
            "curvefit: how many finished trials that stood like this one at the same step a calibrated stop must "
            "rest on (default 8, at least 5). The probability is calibrated on about 2 sqrt(N) of N finished "
            "trials: 8 lets curve fitting stop from about the eighth finished trial on, 10 only once about 25 "
            "have finished. Higher waits longer and stops later."
        ),
    )
    running_quantile: float | None = Field(
        default=None,
        ge=0,
        lt=1,
        description=(
            "curvefit: a trial worse than this quantile of the other trials' running averages at its step is "
            "stopped as the median rule would stop it (0.5 is the median rule), whatever curve fitting says, "
            "unless its finished look-alikes still give it at least runningLift to beat the best (a late "
            "bloomer: trials like it finished better than they looked). Default 0.45; 0 turns this off, so "
            "only calibrated curve fitting stops."
        ),
    )
    running_lift: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description=(
            "curvefit: the probability to beat the best, calibrated on the trial's finished look-alikes, that "
            "keeps a trial below runningQuantile running (default 0.05; 1 keeps none)."
        ),
    )
    lucky_draws: bool | None = Field(
        default=None,
        description=(
            "curvefit: never put the probability to beat the best below that of one of the trial's remaining "
            "measurements reaching it by chance, each scattered around where the trial stands as its own "
            "recent measurements are (default true; objective strategy best only: with the last value as "
            "objective one lucky measurement does not count)."
        ),
    )


class Reruns(Model):
    """Run the top configurations again with new seeds, to measure trial-to-trial variance."""

    top_k: int = Field(default=1, ge=1, le=20, description="How many of the best configurations to re-run.")
    seeds: int = Field(default=3, ge=1, le=50, description="New seeds per configuration.")
    include_baseline: bool = Field(
        default=True, description="Re-run the Study's baseline as often, so the winner is compared on equal terms."
    )
    min_improvement: float | None = Field(
        default=None,
        ge=0,
        description=(
            "The smallest gain over the baseline worth adopting, in the objective's units: the winner is "
            "recommended when its mean gain over the re-runs is at least this and significant (the 95% "
            "confidence interval of the difference excludes zero). Default: the "
            "noise of the re-runs themselves (the larger of their pooled standard deviation and how much their "
            "curves move from step to step late in training). With minRelativeImprovement, the larger applies."
        ),
    )
    min_relative_improvement: float | None = Field(
        default=None,
        ge=0,
        description=(
            "The smallest gain worth adopting as a fraction of the baseline's mean objective (0.01: 1%); "
            "see minImprovement."
        ),
    )


class RoundDefaults(Model):
    """Defaults for every Round of a Study; a Round's own settings override them field by field."""

    algorithm: Algorithm | None = Field(default=None, description="Default search algorithm.")
    budget: Budget | None = Field(default=None, description="Default budget.")
    early_stopping: EarlyStopping | None = Field(default=None, description="Default early-stopping rule.")
