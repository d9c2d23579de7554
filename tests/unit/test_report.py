"""The report page: one self-contained file, the recommendation first, the plots users expect,
the trial table with re-runs and baseline runs marked."""
import json
import math
import re

import pytest

from kubetune.report.html import figure_keys, render_report

from .factories import round_, study, trial

NUISANCE = [{"name": "learning_rate", "type": "float", "min": 1e-4, "max": 1.0, "log": True},
            {"name": "momentum", "type": "float", "min": 0.0, "max": 0.99}]


def curve(final, until=20):
    return [(s, final + 1.0 / s) for s in range(1, until + 1)]


@pytest.fixture(scope="module")
def page():
    rnd = round_(scientific=[{"name": "optimizer", "type": "categorical", "choices": ["sgd", "adam"]}],
                 nuisance=NUISANCE, budget={"maxTrials": 30, "parallelism": 2},
                 reruns={"topK": 1, "seeds": 3, "includeBaseline": True})
    ts = []
    for i in range(12):
        lr, mom = 10 ** (-4 + 4 * ((i * 0.618) % 1)), (i * 0.37) % 0.99
        final = (math.log10(lr) + 2) ** 2 + 0.1 * mom + 0.05
        params = {"optimizer": ["sgd", "adam"][i % 2], "learning_rate": lr, "momentum": mom}
        if i % 4 == 3:
            c = curve(final, 5)
            t = trial(i, params, "EarlyStopped", min(v for _, v in c), c)
        elif i == 10:
            t = trial(i, params, "Infeasible")
            t.status.message = "the objective was NaN at step 3"
        else:
            t = trial(i, params, "Succeeded", final + 0.05, curve(final))
        ts.append(t)
    best = min((t for t in ts if t.status.phase == "Succeeded"), key=lambda t: t.status.objective)
    n = 100
    for k, d in enumerate([0.004, -0.003, 0.001]):
        ts.append(trial(n + k, dict(best.spec.parameters), "Succeeded", best.status.objective + d,
                        purpose="rerun", rerun_of=best.metadata.name))
        ts.append(trial(n + 10 + k, {"optimizer": "sgd", "learning_rate": 0.1, "momentum": 0.0}, "Succeeded",
                        best.status.objective + 0.2 + d, purpose="rerun", rerun_of="baseline"))
    return render_report(study(), rnd, ts), best


def test_the_report_is_one_file_that_fetches_nothing(page):
    from plotly.offline import get_plotlyjs

    html, _ = page
    assert get_plotlyjs() in html  # plotly.js inlined (its own strings hold attribution links, never loaded)
    ours = html.replace(get_plotlyjs(), "")
    assert not re.search(r"""(src|href)=['"]?https?:""", ours) and "<script src" not in ours and "Plotly.newPlot" in html and len(html) > 3_000_000  # plotly.js inlined


def test_the_recommendation_comes_first_in_its_own_colour(page):
    html, best = page
    rec = html.index("id='recommendation'")
    assert rec < html.index("What to check") < html.index("id='plot-history'")
    section = html[rec:html.index("</section>", rec)]
    assert "rec-adopt" in section and f"Adopt {best.metadata.name}" in section
    assert "95% CI" in section and "p = " in section
    # the configuration diff against the baseline (study(): learning_rate 0.1)
    assert "<th>baseline</th>" in section and "<td>learning_rate</td><td>0.1</td>" in section
    assert ".rec-adopt{background:#e8f5e9" in html  # green, not the warnings' amber


def test_the_plots_users_expect_are_there(page):
    html, _ = page
    keys = figure_keys(html)
    for k in ("history", "importance", "slice-optimizer", "slice-learning_rate", "slice-momentum", "contour",
              "parallel", "curves", "isolation-optimizer", "reruns"):
        assert k in keys, k
    figs = {m.group(1): json.loads(m.group(2).replace("<\\/", "</")) for m in re.finditer(
        r"<script type='application/json' class='fig' data-target='plot-([^']+)'>(.*?)</script>", html, re.S)}
    lr = figs["slice-learning_rate"]
    assert lr["layout"]["xaxis"]["type"] == "log"
    names = {t["name"] for t in lr["data"]}
    assert {"succeeded", "early-stopped (value so far)", "infeasible or failed (no value)"} <= names
    bad = next(t for t in lr["data"] if t["name"].startswith("infeasible"))
    assert "r-10" in bad["text"][0] and "NaN at step 3" in bad["text"][0]
    assert any(t["name"] == "best so far (succeeded)" for t in figs["history"]["data"])
    stops = [t for t in figs["curves"]["data"] if t["name"] == "stopped here"]
    assert stops and all("EarlyStopped" in t["text"][0] for t in stops)
    # each chart says on how many trials it rests
    assert "Importance rests on 11 trials (8 succeeded, 3 early-stopped)" in html
    iso = figs["isolation-optimizer"]["layout"]["title"]["text"]
    assert "trials: sgd: " in iso


def test_the_trial_table_marks_reruns_and_baseline_runs(page):
    html, best = page
    table = html[html.index("<table id='trials'>"):]
    assert table.count("<tr class=") == 18
    assert f"re-run of {best.metadata.name}" in table and table.count("baseline run</span>") == 3
    assert "data-role='baseline'" in table and "<option value='rerun'>" in html


def test_report_of_a_manifests_folder_refuses_with_a_hint_and_writes_nothing(tmp_path, capsys):
    import argparse
    import shutil
    from pathlib import Path

    from kubetune.report.cli import report_cli

    src = tmp_path / "quickstart"
    shutil.copytree(Path(__file__).resolve().parents[2] / "examples" / "quickstart", src)
    before = sorted(p.name for p in src.iterdir())
    rc = report_cli(argparse.Namespace(source=str(src), output=None, namespace=None))
    assert rc == 2 and "holds manifests, not a run" in capsys.readouterr().err
    assert sorted(p.name for p in src.iterdir()) == before
