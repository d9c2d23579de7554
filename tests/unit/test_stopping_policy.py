"""A Round's stopping rule applied to one running trial, as the operator and `kubetune run` do."""
from kubetune.api.trial import CurvePoint
from kubetune.core.settings import resolve
from kubetune.core.stopping_policy import stop_decision

from .factories import round_, study, trial


def _curve(value: float, steps: int) -> list[CurvePoint]:
    return [CurvePoint(step=s, value=value + 0.01 / s) for s in range(1, steps + 1)]


def test_decisions_read_the_peers_curves_as_they_are_now():
    s = resolve(study(), round_(earlyStopping={"rule": "median", "startStep": 3, "minTrials": 3}))
    me = trial(9, {"learning_rate": 0.1}, "Running")
    mine = _curve(2.0, 6)
    peers = [trial(i, {"learning_rate": 0.1}, "Succeeded", 1.0, [(p.step, p.value) for p in _curve(1.0, 20)])
             for i in range(4)]
    stop = stop_decision(s, me, mine, [me, *peers])
    assert stop is not None and stop.rule == "median" and stop.step == 6
    # the same Trial objects, their curves replaced (as a local run's statuses are): worse than mine now
    for p in peers:
        p.status.curve = _curve(3.0, 20)
    assert stop_decision(s, me, mine, [me, *peers]) is None


def test_what_decisions_remember_goes_with_the_trials():
    import gc

    from kubetune.core import stopping_policy

    s = resolve(study(), round_(earlyStopping={"rule": "median", "startStep": 3, "minTrials": 3}))
    me = trial(9, {"learning_rate": 0.1}, "Running")
    before = len(stopping_policy._CONVERTED)
    for version in range(50):  # every version of every peer is a new object in the operator
        peers = [trial(i, {"learning_rate": 0.1}, "Succeeded", 1.0, [(p.step, p.value) for p in _curve(1.0, 20)])
                 for i in range(20)]
        stop_decision(s, me, _curve(2.0, 6), [me, *peers])
    del peers
    gc.collect()
    assert len(stopping_policy._CONVERTED) <= before


def test_curve_fitting_hears_of_the_peers_that_were_stopped():
    from .test_stopping import bloomers_and_plateaus, late_drop

    s = resolve(study(), round_(maxSteps=30, earlyStopping={
        "rule": "curvefit", "startStep": 5, "minTrials": 3, "probability": 0.0025, "medianProbability": 0.03}))
    me = trial(99, {"learning_rate": 0.1}, "Running")
    mine = [CurvePoint(step=st, value=v) for st, v in late_drop(0.51, 0.05, 40)[:10]]
    # forty finished: enough for curve fitting to rest a stop on its look-alikes (ten at least)
    twice = bloomers_and_plateaus() + [[(st, v + 0.001) for st, v in c] for c in bloomers_and_plateaus()]
    done = [trial(i, {"learning_rate": 0.1}, "Succeeded", min(v for _, v in c), c) for i, c in enumerate(twice)]
    assert stop_decision(s, me, mine, [me, *done]) is None  # its finished look-alikes bloomed late
    gone = [trial(60 + i, {"learning_rate": 0.1}, "EarlyStopped", 0.5,
                  late_drop(0.505 + 0.0005 * i, 0.5, 40, seed=50 + i)[:13]) for i in range(20)]
    stop = stop_decision(s, me, mine, [me, *done, *gone])
    assert stop is not None and stop.evidence["finishedShare"] < 0.5 and "were stopped" in stop.message


def test_no_rule_stops_a_trial_that_has_reached_its_last_step():
    """Stopping at maxSteps saves nothing and would call a finished trial EarlyStopped."""
    for rule in ({"rule": "median", "startStep": 3, "minTrials": 3},
                 {"rule": "curvefit", "startStep": 3, "minTrials": 3}):
        s = resolve(study(), round_(maxSteps=20, earlyStopping=rule))
        me = trial(9, {"learning_rate": 0.1}, "Running")
        peers = [trial(i, {"learning_rate": 0.1}, "Succeeded", 1.0, [(p.step, p.value) for p in _curve(1.0, 20)])
                 for i in range(6)]
        hopeless = _curve(5.0, 20)
        assert stop_decision(s, me, hopeless[:12], [me, *peers]) is not None, rule  # before the end: stopped
        assert stop_decision(s, me, hopeless, [me, *peers]) is None, rule
        beyond = [*hopeless, CurvePoint(step=21, value=5.0)]  # a trainer that runs past maxSteps
        assert stop_decision(s, me, beyond, [me, *peers]) is None, rule


def test_a_rounds_curvefit_settings_reach_its_decisions():
    """minLookAlikes, runningQuantile, runningLift and luckyDraws in a Round (or as the
    Study's defaults) change what curve fitting stops, as they change CurveFitRule."""
    from .test_stopping_late_bloomers import STEPS, smooth

    me = trial(99, {"learning_rate": 0.1}, "Running")
    done = [trial(i, {"learning_rate": 0.1}, "Succeeded", None, smooth(0.9, 0.1 + 0.01 * i, seed=i))
            for i in range(7)]
    hopeless = [CurvePoint(step=s, value=v) for s, v in smooth(0.9, 0.5, seed=50)[:12]]

    def decide(spec: dict, defaults: dict | None = None):
        rule = {"rule": "curvefit", "startStep": 4, "minTrials": 3, **spec}
        st = study(maxSteps=STEPS, **({"roundDefaults": {"earlyStopping": defaults}} if defaults else {}))
        return stop_decision(resolve(st, round_(earlyStopping=rule)), me, hopeless, [me, *done])

    # seven finished look-alikes are too few for a calibrated stop (8 by default) ...
    assert decide({"runningQuantile": 0}) is None
    stop = decide({"runningQuantile": 0, "minLookAlikes": 5})  # ... five are enough when the Round says so
    assert stop is not None and stop.evidence["calibrationTrials"] >= 5 and "runningQuantile" not in stop.evidence
    # by default, worse than 45% of the others' running averages: stopped as the median rule would
    gated = decide({})
    assert gated is not None and gated.evidence["runningQuantile"] == 0.45
    # the Study's default quantile applies where the Round says nothing; the Round's own wins
    assert decide({}, {"runningQuantile": 0.3}).evidence["runningQuantile"] == 0.3
    assert decide({"runningQuantile": 0}, {"runningQuantile": 0.3}) is None
    # a lift of 0 lets any calibrated chance keep a gated trial running
    assert decide({"runningLift": 0}) is None
    s = resolve(study(), round_(earlyStopping={"rule": "curvefit", "luckyDraws": False}))
    assert s.stopping.lucky_draws is False and resolve(study(), round_()).stopping.lucky_draws is True


def test_the_spec_refuses_fewer_look_alikes_than_the_rule_accepts():
    """api.settings keeps its own copy of the calibration minimum (the API does not import
    the rules): the CRD's minimum for minLookAlikes is the rule's."""
    from kubetune.api.settings import MIN_LOOK_ALIKES
    from kubetune.stopping.calibration import MIN_CALIBRATION

    assert MIN_LOOK_ALIKES == MIN_CALIBRATION
