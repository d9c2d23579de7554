"""The report's plots as Plotly figures (plotly.js draws them, embedded in the page).

Each function takes a Round's trials (and its analysis) and returns a figure, or None
when there is nothing to draw yet. Every point's hover names its trial, its searched
parameters and its value; log domains get log axes; infeasible and failed trials are
marked with a red ✕ where they have no value; early-stopped trials are hollow.
"""
from __future__ import annotations

import math
import warnings
from typing import Any

import plotly.graph_objects as go

from ..analysis import Analysis
from ..analysis.evidence import gather
from ..api import Parameter, Trial
from ..core.round_plan import phase_of
from ..space import SearchSpace

BLUE, ORANGE, RED, GREEN, GREY, PURPLE = "#1f6fb4", "#e07b00", "#c62828", "#2e7d32", "#777", "#6a3d9a"
HEIGHT = 380
FONT = dict(family="system-ui, -apple-system, Segoe UI, Roboto, sans-serif", size=13)


def fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def finite(v: float | None) -> bool:
    return v is not None and math.isfinite(v)


def hover(t: Trial, params: list[Parameter], metric: str, value: float | None = None) -> str:
    """The hover text of one trial: name, phase, value, searched parameters, stop reason."""
    v = t.status.objective if value is None else value
    lines = [f"<b>{t.metadata.name}</b> · {phase_of(t)}"]
    if t.spec.purpose == "rerun":
        lines[0] += f" · re-run of {t.spec.rerun_of}"
    if finite(v):
        lines.append(f"{metric} = {v:.5g}")
    lines += [f"{p.name} = {fmt(t.spec.parameters[p.name])}" for p in params if p.name in t.spec.parameters]
    if t.status.stop_reason:
        lines.append(_wrap(t.status.stop_reason.message))
    elif phase_of(t) in ("Infeasible", "Failed") and t.status.message:
        lines.append(_wrap(t.status.message))
    return "<br>".join(lines)


def _wrap(text: str, width: int = 70) -> str:
    out, line = [], ""
    for word in text.split():
        if line and len(line) + len(word) > width:
            out.append(line)
            line = ""
        line += (" " if line else "") + word
    return "<br>".join(out + [line])


def _layout(title: str, **kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = dict(
        title=dict(text=title, x=0.01, xanchor="left", font=dict(size=15)), height=HEIGHT, font=FONT,
        margin=dict(l=70, r=24, t=56, b=56), template="plotly_white", hoverlabel=dict(align="left"),
        legend=dict(orientation="h", yanchor="bottom", y=1.0, xanchor="right", x=1.0),
    )
    base.update(kw)
    return base


def _ylog(values: list[float]) -> bool:
    """Losses spanning decades get a log axis, so the good trials stay readable."""
    vals = [v for v in values if finite(v)]
    return bool(vals) and min(vals) > 0 and max(vals) / min(vals) > 20


def log_ticks(lo: float, hi: float) -> list[float]:
    """Round tick values for a log axis from lo to hi: 1-2-5 per decade over a few decades,
    1-3 over more, powers of ten beyond (plotly's own put an unlabelled digit at each minor tick)."""
    decades = math.log10(hi / lo)
    mantissas = (1, 2, 5) if decades <= 2.5 else (1, 3) if decades <= 4.5 else (1,)
    out = [m * 10.0 ** k for k in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1) for m in mantissas]
    return [float(f"{v:.3g}") for v in out if lo * (1 - 1e-9) <= v <= hi * (1 + 1e-9)]


def log_axis(values: list[float]) -> dict[str, Any]:
    vals = [v for v in values if v is not None and math.isfinite(v) and v > 0]
    if not vals:
        return dict(type="log")
    ticks = log_ticks(min(vals), max(vals))
    return dict(type="log", tickvals=ticks, ticktext=[f"{v:g}" for v in ticks])


def _yaxis(metric: str, values: list[Any]) -> dict[str, Any]:
    if _ylog(values):
        return dict(title=metric + " (log)", **log_axis(values))
    return dict(title=metric)


def _axis(p: Parameter) -> dict[str, Any]:
    if p.type == "categorical":
        return dict(type="category", categoryorder="array", categoryarray=[str(c) for c in p.choices or []])
    if p.log and p.min and p.max:
        return log_axis([p.min, p.max])
    return dict(type="linear")


def _xvalue(p: Parameter, v: Any) -> Any:
    return str(v) if p.type == "categorical" else v


def history(search: list[Trial], params: list[Parameter], metric: str, direction: str) -> go.Figure | None:
    """Objective per trial in the order they were created, with the best-so-far line."""
    ordered = sorted(search, key=lambda t: t.spec.number)
    valued = [t for t in ordered if finite(t.status.objective)]
    if not valued:
        return None
    fig = go.Figure()
    for phase, color, symbol in (("Succeeded", BLUE, "circle"), ("EarlyStopped", ORANGE, "circle-open")):
        ts = [t for t in valued if phase_of(t) == phase]
        if ts:
            fig.add_trace(go.Scatter(
                x=[t.spec.number for t in ts], y=[t.status.objective for t in ts], mode="markers",
                name="early-stopped (value so far)" if phase == "EarlyStopped" else "succeeded",
                marker=dict(color=color, size=9, symbol=symbol, line=dict(width=2, color=color)),
                text=[hover(t, params, metric) for t in ts], hovertemplate="%{text}<extra></extra>"))
    best, xs, ys = None, [], []
    sign = 1.0 if direction == "minimize" else -1.0
    for t in ordered:
        v = t.status.objective
        if phase_of(t) == "Succeeded" and finite(v) and (best is None or sign * v < sign * best):  # type: ignore[operator]
            best = v
        if best is not None:
            xs.append(t.spec.number)
            ys.append(best)
    if xs:
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name="best so far (succeeded)", line_shape="hv",
                                 line=dict(color=GREEN, width=2), hovertemplate="best so far: %{y:.5g}<extra></extra>"))
    _mark_bad(fig, ordered, params, metric, x=lambda t: t.spec.number, y=_worst([t.status.objective for t in valued],
                                                                                  direction))
    yvals = [t.status.objective for t in valued]
    fig.update_layout(**_layout("Objective history", xaxis=dict(title="trial number", rangemode="tozero"),
                                yaxis=_yaxis(metric, yvals)))
    return fig


def _worst(values: list[float | None], direction: str) -> float:
    vals = [v for v in values if finite(v)]
    return (max(vals) if direction == "minimize" else min(vals)) if vals else 0.0  # type: ignore[type-var]


def _mark_bad(fig: go.Figure, trials: list[Trial], params: list[Parameter], metric: str, x: Any, y: float) -> None:
    """Infeasible and failed trials have no value: a red ✕ at the worst value seen, hover says why."""
    bad = [t for t in trials if phase_of(t) in ("Infeasible", "Failed")]
    if bad:
        fig.add_trace(go.Scatter(
            x=[x(t) for t in bad], y=[y] * len(bad), mode="markers", name="infeasible or failed (no value)",
            marker=dict(color=RED, size=11, symbol="x"), text=[hover(t, params, metric) for t in bad],
            hovertemplate="%{text}<extra></extra>"))


def slice_plot(p: Parameter, search: list[Trial], params: list[Parameter], metric: str, direction: str,
               scientific: bool) -> go.Figure | None:
    """Objective against one parameter: each point a trial."""
    ts = [t for t in search if p.name in t.spec.parameters]
    valued = [t for t in ts if finite(t.status.objective)]
    if not ts:
        return None
    fig = go.Figure()
    for phase, color, symbol, label in (("Succeeded", BLUE, "circle", "succeeded"),
                                        ("EarlyStopped", ORANGE, "circle-open", "early-stopped (value so far)")):
        sel = [t for t in valued if phase_of(t) == phase]
        if sel:
            fig.add_trace(go.Scatter(
                x=[_xvalue(p, t.spec.parameters[p.name]) for t in sel], y=[t.status.objective for t in sel],
                mode="markers", name=label, marker=dict(color=color, size=9, symbol=symbol, line=dict(width=2, color=color)),
                text=[hover(t, params, metric) for t in sel], hovertemplate="%{text}<extra></extra>"))
    _mark_bad(fig, ts, params, metric, x=lambda t: _xvalue(p, t.spec.parameters[p.name]),
              y=_worst([t.status.objective for t in valued], direction))
    yvals = [t.status.objective for t in valued]
    title = f"{metric} against {p.name}" + (" (scientific)" if scientific else "")
    fig.update_layout(**_layout(title, xaxis=dict(title=p.name + (" (log)" if p.log else ""), **_axis(p)),
                                yaxis=_yaxis(metric, yvals)))
    return fig


def parallel(search: list[Trial], params: list[Parameter], metric: str, direction: str) -> go.Figure | None:
    """Parallel coordinates of the searched parameters and the objective (log domains as log10)."""
    valued = [t for t in search if finite(t.status.objective) and all(p.name in t.spec.parameters for p in params)]
    if len(valued) < 2:
        return None
    dims = []
    for p in params:
        vals = [t.spec.parameters[p.name] for t in valued]
        if p.type == "categorical":
            cats = [str(c) for c in p.choices or []]
            dims.append(dict(label=p.name, values=[cats.index(str(v)) if str(v) in cats else -1 for v in vals],
                             tickvals=list(range(len(cats))), ticktext=cats))
        elif p.log:
            lo, hi = math.log10(p.min), math.log10(p.max)  # type: ignore[arg-type]
            ticks = list(range(math.ceil(lo), math.floor(hi) + 1)) or [lo, hi]
            dims.append(dict(label=f"{p.name} (log)", values=[math.log10(float(v)) for v in vals], range=[lo, hi],
                             tickvals=ticks, ticktext=[f"{10.0 ** k:.3g}" for k in ticks]))
        else:
            dims.append(dict(label=p.name, values=[float(v) for v in vals], range=[p.min, p.max]))
    ys = [t.status.objective for t in valued]
    dims.append(dict(label=metric, values=ys))
    fig = go.Figure(go.Parcoords(
        dimensions=dims, line=dict(color=ys, colorscale="Viridis", reversescale=direction == "maximize",
                                   showscale=True, colorbar=dict(title=dict(text=metric)))))
    fig.update_layout(**_layout(f"Parallel coordinates ({len(valued)} trials with a value)",
                                margin=dict(l=70, r=70, t=90, b=40)))
    return fig


def contour(search: list[Trial], space: SearchSpace, a: Analysis, metric: str, direction: str) -> go.Figure | None:
    """optuna's contour of the two most important parameters, over the trials with a value."""
    import optuna
    from optuna.trial import create_trial

    order = sorted(a.importance, key=a.importance.get, reverse=True)[:2]  # type: ignore[arg-type]
    if len(order) < 2:
        return None
    dists = space.distributions()
    study = optuna.create_study(direction=direction)
    for t in search:
        v = t.status.objective
        if finite(v) and all(n in t.spec.parameters for n in order):
            params = {n: t.spec.parameters[n] for n in order}
            study.add_trial(create_trial(params=params, distributions={n: dists[n] for n in order}, value=v))
    if len(study.trials) < 3:
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fig = optuna.visualization.plot_contour(study, params=order, target_name=metric)
    except Exception:  # noqa: BLE001 - a picture we cannot draw is no reason to lose the report
        return None
    fig.update_layout(**_layout(f"Contour: {order[0]} × {order[1]}, the two most important", height=HEIGHT + 40))
    for axis in (fig.layout.xaxis, fig.layout.yaxis):  # optuna orders the axes itself (by name): ask each its title
        name = axis.title.text if axis.title and axis.title.text in order else None
        p = space.by_name(name) if name else None
        if p is not None and p.log and p.min and p.max and p.type != "categorical":
            ticks = log_ticks(p.min, p.max)
            axis.update(tickvals=ticks, ticktext=[f"{v:g}" for v in ticks])
    return fig


def importance(a: Analysis) -> go.Figure | None:
    if not a.importance:
        return None
    items = sorted(a.importance.items(), key=lambda kv: kv[1])
    fig = go.Figure(go.Bar(x=[v for _, v in items], y=[k for k, _ in items], orientation="h", marker_color=BLUE,
                           text=[f"{v:.2f}" for _, v in items], textposition="auto",
                           hovertemplate="%{y}: %{x:.3f}<extra></extra>"))
    fig.update_layout(**_layout("Hyperparameter importance (fANOVA)", height=max(220, 90 + 40 * len(items)),
                                xaxis=dict(title="share of the objective's variance", range=[0, 1]),
                                margin=dict(l=120, r=24, t=56, b=56)))
    return fig


def curves(trials: list[Trial], a: Analysis, params: list[Parameter], metric: str,
           direction: str) -> go.Figure | None:
    """Intermediate values: the top trials' curves and the early-stopped ones', each stop marked."""
    by_name = {t.metadata.name: t for t in trials}
    top = [by_name[r.name] for r in a.best_trials[:5] if r.name in by_name]
    stopped = [t for t in trials if t.spec.purpose == "search" and phase_of(t) == "EarlyStopped"]
    stopped = sorted(stopped, key=lambda t: t.spec.number)[:12]
    if not any(t.status.curve for t in top + stopped):
        return None
    fig = go.Figure()
    palette = ["#1f6fb4", "#2e7d32", "#6a3d9a", "#00838f", "#455a64"]
    values = []
    for i, t in enumerate(top):
        pts = [(p.step, p.value) for p in t.status.curve if math.isfinite(p.value)]
        values += [v for _, v in pts]
        label = hover(t, params, metric)
        fig.add_trace(go.Scatter(x=[s for s, _ in pts], y=[v for _, v in pts], mode="lines",
                                 name=f"{t.metadata.name} (top {i + 1})", line=dict(color=palette[i % 5], width=2.5),
                                 text=[label] * len(pts),
                                 hovertemplate="step %{x}: %{y:.5g}<br>%{text}<extra></extra>"))
    for t in stopped:
        pts = [(p.step, p.value) for p in t.status.curve if math.isfinite(p.value)]
        if not pts:
            continue
        values += [v for _, v in pts]
        label = hover(t, params, metric)
        fig.add_trace(go.Scatter(x=[s for s, _ in pts], y=[v for _, v in pts], mode="lines", name=t.metadata.name,
                                 legendgroup="stopped", showlegend=False,
                                 line=dict(color=ORANGE, width=1.2, dash="dot"), opacity=0.8, text=[label] * len(pts),
                                 hovertemplate="step %{x}: %{y:.5g}<br>%{text}<extra></extra>"))
        s, v = pts[-1]
        fig.add_trace(go.Scatter(x=[s], y=[v], mode="markers", name="stopped here", legendgroup="stopped",
                                 showlegend=t is stopped[0], marker=dict(color=ORANGE, size=10, symbol="x"),
                                 text=[label], hovertemplate="stopped at step %{x}: %{y:.5g}<br>%{text}<extra></extra>"))
    yvals = values
    fig.update_layout(**_layout("Intermediate values: top trials and early-stopped ones (dotted, ✕ where stopped)",
                                height=HEIGHT + 60, xaxis=dict(title="step"),
                                yaxis=_yaxis(metric, yvals)))
    return fig


def isolation(p: Parameter, trials: list[Trial], a: Analysis, params: list[Parameter], metric: str,
              direction: str) -> go.Figure | None:
    """The playbook's isolation plot: for each scientific value, the spread of its trials'
    values (nuisance parameters varied) and the best, i.e. the value with nuisance tuned out."""
    from ..analysis.isolation import _label

    points = [i for i in a.isolation if i.parameter == p.name]
    if not points:
        return None
    ev = gather(trials, direction).trials
    fig = go.Figure()
    keys = [i.value for i in points]
    for phase, color, symbol, label in (("Succeeded", BLUE, "circle", "succeeded"),
                                        ("EarlyStopped", ORANGE, "circle-open", "early-stopped (value so far)")):
        sel = [t for t in ev if phase_of(t) == phase and p.name in t.spec.parameters]
        if sel:
            fig.add_trace(go.Box(
                x=[_label(p, t.spec.parameters[p.name]) for t in sel], y=[t.status.objective for t in sel],
                name=label, boxpoints="all", jitter=0.4, pointpos=0, fillcolor="rgba(0,0,0,0)",
                line=dict(color="rgba(0,0,0,0)"), marker=dict(color=color, size=8, symbol=symbol),
                text=[hover(t, params, metric) for t in sel], hovertemplate="%{text}<extra></extra>", hoveron="points"))
    best = [i for i in points if i.best is not None]
    fig.add_trace(go.Scatter(
        x=[i.value for i in best], y=[i.best for i in best], mode="markers+lines", name="best (nuisance tuned)",
        marker=dict(color=GREEN, size=15, symbol="star"), line=dict(color=GREEN, width=1.5, dash="dash"),
        text=[f"<b>{i.value}</b>: best {metric} {i.best:.5g} ({i.trial})<br>{i.trials} trials, "
              f"{i.early_stopped} early-stopped" for i in best], hovertemplate="%{text}<extra></extra>"))
    yvals = [t.status.objective for t in ev]
    counts = ", ".join(f"{i.value}: {i.trials}" for i in points)
    fig.update_layout(**_layout(f"Isolation: {metric} per {p.name} (trials: {counts})",
                                xaxis=dict(title=p.name, type="category", categoryorder="array", categoryarray=keys),
                                yaxis=_yaxis(metric, yvals)))
    return fig


def reruns(trials: list[Trial], a: Analysis, metric: str) -> go.Figure | None:
    """The re-run comparison: each configuration's values over seeds, mean and spread."""
    r = a.reruns
    if r is None or not r.groups:
        return None
    fig = go.Figure()
    for g in r.groups:
        color = GREY if g.configuration == "baseline" else (GREEN if g.configuration == r.winner else BLUE)
        fig.add_trace(go.Box(y=g.values, name=g.configuration, boxpoints="all", jitter=0.3, pointpos=0,
                             boxmean=True, marker=dict(color=color, size=9), line=dict(color=color),
                             hovertemplate=f"{g.configuration}: %{{y:.5g}}<extra>{g.n} runs</extra>"))
    title = "Re-runs with new seeds: each configuration's values"
    fig.update_layout(**_layout(title, showlegend=False, yaxis=dict(title=metric), xaxis=dict(title="configuration")))
    return fig
