import datetime as dt

from kubetune.api.round import BestTrial
from kubetune.controller.adoption import ADOPT_ANNOTATION, plan_study_status
from kubetune.space import current_baseline

from .factories import round_, study

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


def finished_round(recommendation="adopt"):
    r = round_()
    r.status.phase = "Succeeded"
    r.status.best_value = 0.2
    r.status.best_trial = BestTrial(name="r-3", value=0.2, parameters={"learning_rate": 0.02, "optimizer": "sgd"})
    r.status.analysis = {"reruns": {"winner": "r-3", "recommendation": recommendation, "message": "adopt r-3: p=0.01"},
                         "bestTrials": [{"name": "r-3", "value": 0.2, "parameters": {"learning_rate": 0.02, "optimizer": "sgd"}}]}
    return r


def test_rounds_are_summarized_and_nothing_is_adopted_without_a_decision():
    s = plan_study_status(study(), [finished_round()], NOW)
    assert [(r.name, r.phase, r.best_value) for r in s.rounds] == [("r", "Succeeded", 0.2)]
    assert s.adopted == [] and s.baseline == {}


def test_the_annotation_adopts_the_recommended_configuration_into_status_only():
    st = study()
    st.metadata.annotations[ADOPT_ANNOTATION] = "r"
    s = plan_study_status(st, [finished_round()], NOW)
    (a,) = s.adopted
    assert a.round == "r" and a.trial == "r-3" and "p=0.01" in a.evidence
    assert s.baseline == {"learning_rate": 0.02}  # only what the Round searched
    assert st.spec.baseline["learning_rate"] == 0.1  # the spec is never rewritten
    st.status = s
    assert current_baseline(st)["learning_rate"] == 0.02
    again = plan_study_status(st, [finished_round()], NOW)
    assert len(again.adopted) == 1  # idempotent


def test_auto_adopt_follows_only_an_adopt_recommendation():
    st = study(autoAdopt=True)
    assert plan_study_status(st, [finished_round("gatherMoreEvidence")], NOW).adopted == []
    assert len(plan_study_status(st, [finished_round("adopt")], NOW).adopted) == 1
