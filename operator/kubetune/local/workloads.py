"""Which workloads `kubetune run` can run on one machine: a pod template, and a Job (its pod
template's training container, as a pod's). JobSets, PyTorchJobs and other kinds need their
controllers (and several nodes): refused with one line that says so."""
from __future__ import annotations

from ..api import Round, Study
from ..api.workload import JOB
from ..workload import trial_workload


class NeedsCluster(ValueError):
    """The Round's trials run as a workload only a cluster can run."""


def local_study(study: Study, rnd: Round) -> Study:
    """The Study as a local run of `rnd` runs it: with the Round's workload in place of the
    Study's (a Round's workload replaces the Study's entirely)."""
    wl = trial_workload(study, rnd)
    if wl is None:
        return study
    if wl.kind_info() is not JOB:
        raise NeedsCluster(
            f"Round {rnd.metadata.name}'s trials run as a {wl.kind} ({wl.api_version}), which needs a cluster with its "
            f"controller: `kubetune run` runs pod templates and Jobs only; apply the Study and Round with kubectl instead")
    if rnd.spec.workload is not None:
        study = study.model_copy(deep=True)
        study.spec.workload, study.spec.template = rnd.spec.workload, None
    return study
