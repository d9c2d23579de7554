"""Render a Round's report: analysis messages, axis plots, curves, isolation, re-runs."""
from __future__ import annotations

import math
from html import escape

from ..analysis import Analysis, analyze_round
from ..api import Round, Study, Trial
from ..core.round_plan import phase_of
from ..core.settings import resolve
from ..space import SearchSpace
from .svg import chart

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;margin:2em auto;color:#222;padding:0 1em}
h1{font-size:1.6em;margin-bottom:.2em} h2{margin-top:1.6em;border-bottom:1px solid #ddd;padding-bottom:.2em}
.goal{color:#555;font-style:italic} .grid{display:flex;flex-wrap:wrap;gap:1em}
figure{margin:0;border:1px solid #eee;padding:.5em;border-radius:6px} figcaption{font-weight:600;margin-bottom:.3em}
table{border-collapse:collapse;font-size:.92em} td,th{border-bottom:1px solid #eee;padding:.3em .7em;text-align:left}
.msg li{margin:.3em 0} .warn{color:#a15c00} .legend span{margin-right:.8em;font-size:.85em}
.legend i{display:inline-block;width:10px;height:10px;margin-right:3px} .empty{color:#999}
.badge{display:inline-block;padding:.1em .5em;border-radius:4px;background:#eef;font-size:.85em}
"""


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return escape(str(v))


def render_report(study: Study, rnd: Round, trials: list[Trial], analysis: Analysis | None = None) -> str:
    s = resolve(study, rnd)
    a = analysis or analyze_round(study, rnd, trials)
    space = SearchSpace.of(rnd.spec)
    st = rnd.status
    search = [t for t in trials if t.spec.purpose == "search"]
    ok = [t for t in search if phase_of(t) in ("Succeeded", "EarlyStopped") and t.status.objective is not None]
    bad = [t for t in search if phase_of(t) in ("Infeasible", "Failed")]
    h = [f"<!doctype html><html><head><meta charset='utf-8'><title>kubetune · {escape(rnd.metadata.name)}</title>"
         f"<style>{CSS}</style></head><body>"]
    h.append(f"<h1>Round {escape(rnd.metadata.name)} <span class='badge'>{escape(st.phase or 'Pending')}</span></h1>")
    h.append(f"<p class='goal'>{escape(rnd.spec.goal)}</p>")
    c = st.counts
    h.append(f"<p>Study <b>{escape(study.metadata.name)}</b> · objective <b>{s.metric}</b> ({s.direction}, {s.strategy} value) · "
             f"algorithm {s.algorithm} · early stopping {s.stopping.rule} · trials {escape(st.progress)}: "
             f"{c.succeeded} succeeded, {c.early_stopped} early-stopped, {c.infeasible} infeasible, {c.failed} failed"
             f"{', ' + str(c.running + c.pending) + ' running' if c.running + c.pending else ''}.</p>")

    h.append("<h2>What to check</h2>")
    if a.messages:
        h.append("<ul class='msg'>" + "".join(f"<li class='warn'>{escape(m)}</li>" for m in a.messages) + "</ul>")
    else:
        h.append("<p>No warnings: no best trial sits on a boundary, no region diverges, the top curves look healthy.</p>")

    h.append("<h2>Best trials</h2><table><tr><th>trial</th><th>" + escape(s.metric) + "</th>"
             + "".join(f"<th>{escape(p.name)}</th>" for p in space.parameters) + "</tr>")
    for r in a.best_trials:
        h.append(f"<tr><td>{escape(r.name)}</td><td>{r.value:.5g}</td>"
                 + "".join(f"<td>{_fmt(r.parameters.get(p.name, '—'))}</td>" for p in space.parameters) + "</tr>")
    h.append("</table>")

    h.append("<h2>Objective against each hyperparameter</h2><p>Each point is a trial (early-stopped trials "
             "at their best value so far); ✕ marks infeasible or failed trials.</p><div class='grid'>")
    for p in space.parameters:
        cats = [str(x) for x in p.choices] if p.type == "categorical" and p.choices else None

        def xval(t: Trial) -> float | None:
            v = t.spec.parameters.get(p.name)
            if v is None:
                return None
            return float(cats.index(str(v))) if cats else float(v)

        done = [(xval(t), t.status.objective) for t in ok if phase_of(t) == "Succeeded" and xval(t) is not None]
        stopped = [(xval(t), t.status.objective) for t in ok if phase_of(t) == "EarlyStopped" and xval(t) is not None]
        marks = [(xval(t), f"{t.metadata.name}: {phase_of(t)}") for t in bad if xval(t) is not None]
        h.append(chart(p.name + (" (scientific)" if p.name in space.scientific else ""),
                       [("finished", done, "dots"), ("early-stopped", stopped, "dots")],
                       p.name, s.metric, xlog=bool(p.log), marks=marks, categories=cats))  # type: ignore[arg-type]
    h.append("</div>")

    h.append("<h2>Training curves</h2><div class='grid'>")
    top = [t for t in (next((x for x in trials if x.metadata.name == r.name), None) for r in a.best_trials[:5]) if t]
    h.append(chart("Top trials", [(t.metadata.name, [(p.step, p.value) for p in t.status.curve], "line") for t in top],
                   "step", s.metric))
    stopped_t = [t for t in search if phase_of(t) == "EarlyStopped"][:8]
    if stopped_t:
        h.append(chart("Early-stopped trials", [(t.metadata.name, [(p.step, p.value) for p in t.status.curve], "line")
                                                for t in stopped_t], "step", s.metric))
    h.append("</div>")
    if a.curves:
        h.append("<ul class='msg'>" + "".join(f"<li>{escape(f.message)}</li>" for f in a.curves) + "</ul>")
    if stopped_t:
        h.append("<table><tr><th>trial</th><th>rule</th><th>step</th><th>why</th></tr>" + "".join(
            f"<tr><td>{escape(t.metadata.name)}</td><td>{escape(t.status.stop_reason.rule if t.status.stop_reason else '')}</td>"
            f"<td>{t.status.stop_reason.step if t.status.stop_reason else ''}</td><td>{escape(t.status.message)}</td></tr>"
            for t in stopped_t) + "</table>")

    if a.isolation:
        h.append("<h2>Isolation: each scientific value with its nuisance parameters tuned</h2><div class='grid'>")
        for name in dict.fromkeys(i.parameter for i in a.isolation):
            pts = [i for i in a.isolation if i.parameter == name]
            cats = [i.value for i in pts]
            h.append(chart(f"best {s.metric} per {name}", [("best", [(k, i.best) for k, i in enumerate(pts)
                                                                     if i.best is not None], "dots")],
                           name, s.metric, categories=cats))
        h.append("</div><table><tr><th>parameter</th><th>value</th><th>trials</th><th>best</th><th>trial</th></tr>"
                 + "".join(f"<tr><td>{escape(i.parameter)}</td><td>{escape(i.value)}</td><td>{i.trials}</td>"
                           f"<td>{_fmt(i.best) if i.best is not None else '—'}</td><td>{escape(i.trial or '—')}</td></tr>"
                           for i in a.isolation) + "</table>")

    if a.importance:
        h.append("<h2>Hyperparameter importance (fANOVA)</h2><table>" + "".join(
            f"<tr><td>{escape(k)}</td><td><div style='background:#1f77b4;height:10px;width:{max(1, v * 300):.0f}px'></div></td>"
            f"<td>{v:.2f}</td></tr>" for k, v in a.importance.items()) + "</table>")

    if a.reruns:
        r = a.reruns
        h.append("<h2>Re-runs with new seeds</h2><table><tr><th>configuration</th><th>runs</th><th>mean</th>"
                 "<th>std</th><th>values</th></tr>" + "".join(
                     f"<tr><td>{escape(g.configuration)}</td><td>{g.n}</td><td>{_fmt(g.mean)}</td>"
                     f"<td>{_fmt(g.std) if g.std is not None else '—'}</td>"
                     f"<td>{', '.join(f'{v:.4g}' for v in g.values)}</td></tr>" for g in r.groups) + "</table>")
        if r.recommendation:
            h.append(f"<p><b>Recommendation: {escape(r.recommendation)}</b> — {escape(r.message)}</p>")

    h.append("<h2>All trials</h2><table><tr><th>trial</th><th>phase</th><th>step</th><th>" + escape(s.metric)
             + "</th><th>parameters</th><th>message</th></tr>")
    for t in sorted(trials, key=lambda t: t.spec.number):
        v = t.status.objective
        h.append(f"<tr><td>{escape(t.metadata.name)}</td><td>{escape(phase_of(t))}</td><td>{t.status.last_step or ''}</td>"
                 f"<td>{'' if v is None or not math.isfinite(v) else f'{v:.5g}'}</td>"
                 f"<td>{escape(', '.join(f'{k}={_fmt(x)}' for k, x in t.spec.parameters.items() if k in {p.name for p in space.parameters}))}</td>"
                 f"<td>{escape(t.status.message)}</td></tr>")
    h.append("</table><p style='color:#888;font-size:.85em'>Generated by kubetune.</p></body></html>")
    return "".join(h)
