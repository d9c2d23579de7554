"""Render a Round's report: the recommendation first, then what to check, the plots
(Plotly, drawn in the browser from figures embedded in the page) and every trial in a
sortable, filterable table. One self-contained file: plotly.js is inlined, nothing is
fetched. The live dashboard serves the same page with plotly.js from its own server and
a script that swaps in the new content when the Round changes."""
from __future__ import annotations

import math
from html import escape
from typing import Any

from ..analysis import Analysis, analyze_round
from ..api import Round, Study, Trial
from ..core.round_plan import phase_of
from ..core.settings import resolve
from ..space import SearchSpace
from . import figures

CSS = """
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1480px;margin:0 auto;color:#1d2329;
 padding:1.2em 1.5em 3em;background:#fbfbfc;line-height:1.45}
h1{font-size:1.55em;margin:.2em 0} h2{font-size:1.2em;margin-top:1.8em;border-bottom:1px solid #dde1e6;padding-bottom:.25em}
.goal{color:#48525c;font-style:italic;margin:.2em 0 .5em} .meta{color:#48525c;font-size:.93em}
.badge{display:inline-block;padding:.1em .55em;border-radius:4px;background:#e6e9f0;font-size:.6em;vertical-align:middle}
.rec{border-radius:8px;padding:1em 1.3em;margin:1.1em 0;border:2px solid;display:flex;gap:2em;flex-wrap:wrap}
.rec h2{border:0;margin:0 0 .3em;font-size:1.35em} .rec .why{max-width:760px} .rec table{font-size:.93em;background:#fff8}
.rec-adopt{background:#e8f5e9;border-color:#2e7d32} .rec-adopt h2{color:#1b5e20}
.rec-keepBaseline{background:#e8eef7;border-color:#37598a} .rec-keepBaseline h2{color:#1f3f6e}
.rec-gatherMoreEvidence,.rec-none{background:#f1ebf8;border-color:#6a3d9a} .rec-gatherMoreEvidence h2,.rec-none h2{color:#4a2574}
.gain{font-size:1.05em;margin:.4em 0} .gain b{font-size:1.15em}
.msg{padding-left:1.2em} .msg li{margin:.3em 0} .warn{color:#8a4b00} .skipped{color:#5f6b76}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(600px,1fr));gap:1em}
.plot{background:#fff;border:1px solid #e3e6ea;border-radius:6px;min-height:200px}
.plot.wide{grid-column:1/-1} .note{color:#5f6b76;font-size:.9em;margin:.3em 0 .8em}
table{border-collapse:collapse;font-size:.9em} td,th{border-bottom:1px solid #e6e9ed;padding:.3em .6em;text-align:left;vertical-align:top}
#trials{width:100%;background:#fff} #trials th{cursor:pointer;user-select:none;position:sticky;top:0;background:#f1f3f5;white-space:nowrap}
#trials th.asc::after{content:" ▲"} #trials th.desc::after{content:" ▼"} #trials td.num{text-align:right;font-variant-numeric:tabular-nums}
#trials tr.rerun{background:#f3f8f1} #trials tr.bad td.phase{color:#c62828} #trials tr.EarlyStopped td.phase{color:#b36200}
#trials td.note{max-width:520px;font-size:.92em;color:#48525c}
.tag{display:inline-block;padding:0 .4em;border-radius:3px;font-size:.82em;background:#e6e9f0;margin-left:.3em}
.tag.rerun{background:#d9ecd5} .tag.baseline{background:#dfe3f3}
.filters{margin:.6em 0;display:flex;gap:.8em;align-items:center;flex-wrap:wrap} .filters input{padding:.3em .5em;width:22em}
.live{position:fixed;top:.5em;right:1em;font-size:.8em;color:#2e7d32;background:#fff;border:1px solid #cde3cf;border-radius:4px;padding:.1em .5em}
footer{color:#8a939c;font-size:.85em;margin-top:2em}
"""

# Draws each figure, and makes the trial table sortable and filterable; run again after a live update.
SCRIPT = r"""
function ktDraw(root){
  root.querySelectorAll('script.fig').forEach(function(s){
    var el=document.getElementById(s.dataset.target); if(!el) return;
    var fig=JSON.parse(s.textContent);
    Plotly.newPlot(el, fig.data, fig.layout, {responsive:true, displaylogo:false});
  });
  var table=document.getElementById('trials'); if(!table) return;
  var body=table.tBodies[0], ths=table.tHead.rows[0].cells;
  Array.prototype.forEach.call(ths, function(th, i){
    th.addEventListener('click', function(){
      var asc=!th.classList.contains('asc');
      Array.prototype.forEach.call(ths, function(h){h.classList.remove('asc','desc');});
      th.classList.add(asc?'asc':'desc');
      var rows=Array.prototype.slice.call(body.rows);
      rows.sort(function(a,b){
        var x=a.cells[i].dataset.v, y=b.cells[i].dataset.v;
        var nx=parseFloat(x), ny=parseFloat(y), c;
        if(!isNaN(nx)&&!isNaN(ny)) c=nx-ny; else if(!isNaN(nx)) c=-1; else if(!isNaN(ny)) c=1;
        else c=String(x).localeCompare(String(y), undefined, {numeric:true});
        return asc?c:-c;
      });
      rows.forEach(function(r){body.appendChild(r);});
    });
  });
  var text=document.getElementById('filter'), phase=document.getElementById('phase');
  function apply(){
    var q=(text.value||'').toLowerCase(), ph=phase.value, shown=0;
    Array.prototype.forEach.call(body.rows, function(r){
      var ok=(!q||r.textContent.toLowerCase().indexOf(q)>=0)&&(!ph||r.dataset.phase===ph||r.dataset.role===ph);
      r.style.display=ok?'':'none'; if(ok) shown++;
    });
    document.getElementById('shown').textContent=shown+' of '+body.rows.length+' trials';
  }
  text.addEventListener('input', apply); phase.addEventListener('change', apply); apply();
}
document.addEventListener('DOMContentLoaded', function(){ktDraw(document);});
"""

# The dashboard's: poll the Round's version, swap in the new content when it changes.
LIVE = r"""
(function(){
  var version=document.body.dataset.version;
  function tick(){
    fetch(document.body.dataset.live, {cache:'no-store'}).then(function(r){return r.json();}).then(function(v){
      if(v.version===version) return;
      return fetch(location.href, {cache:'no-store'}).then(function(r){return r.text();}).then(function(html){
        var doc=new DOMParser().parseFromString(html, 'text/html');
        var q=document.getElementById('filter'), p=document.getElementById('phase');
        var keep=[q?q.value:'', p?p.value:''];
        document.getElementById('content').innerHTML=doc.getElementById('content').innerHTML;
        version=doc.body.dataset.version; document.body.dataset.version=version;
        if(document.getElementById('filter')){document.getElementById('filter').value=keep[0];
          document.getElementById('phase').value=keep[1];}
        ktDraw(document.getElementById('content'));
        var s=document.getElementById('live'); if(s) s.textContent='live · updated '+new Date().toLocaleTimeString();
      });
    }).catch(function(){var s=document.getElementById('live'); if(s) s.textContent='live · server unreachable';})
      .then(function(){setTimeout(tick, 2000);});
  }
  setTimeout(tick, 2000);
})();
"""

VERDICTS = {
    "adopt": "Adopt {winner}",
    "keepBaseline": "Keep the baseline",
    "gatherMoreEvidence": "Gather more evidence",
}


def _fmt(v: object) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return escape(str(v))


def _num(v: float | None) -> str:
    return "" if v is None or not math.isfinite(v) else f"{v:.5g}"


def _figure(key: str, fig: Any, wide: bool = False) -> str:
    """A placeholder div and the figure's JSON beside it (drawn by ktDraw)."""
    if fig is None:
        return ""
    data = fig.to_json().replace("</", "<\\/")  # a '</script>' inside the JSON would end the script
    return (f"<div class='plot{' wide' if wide else ''}' id='plot-{escape(key)}' data-plot='{escape(key)}'></div>"
            f"<script type='application/json' class='fig' data-target='plot-{escape(key)}'>{data}</script>")


def _recommendation(study: Study, trials: list[Trial], a: Analysis, metric: str, searched: list[str]) -> str:
    r = a.reruns
    by_name = {t.metadata.name: t for t in trials}
    base = study.spec.baseline
    if r is not None and r.recommendation:
        kind = r.recommendation
        title = VERDICTS.get(kind, kind).format(winner=r.winner)
        why = r.message
    elif r is not None:
        kind, title, why = "none", "No recommendation yet", r.message or "re-runs have not finished yet"
    else:
        kind, title = "none", "No recommendation: this Round has no re-runs"
        why = ("a single run of each configuration cannot tell a real gain from a lucky seed; set spec.reruns "
               "(topK, seeds, includeBaseline) to re-run the best configurations and the baseline")
    winner = r.winner if r is not None and r.winner else (a.best_trials[0].name if a.best_trials else None)
    h = [f"<section id='recommendation' class='rec rec-{escape(kind)}'><div class='why'><h2>{escape(title)}</h2>"]
    if r is not None and r.difference is not None and r.interval:
        h.append(f"<p class='gain'>gain <b>{r.difference:.4g}</b> {escape(metric)} (95% CI {r.interval[0]:.4g} to "
                 f"{r.interval[1]:.4g}), one-sided p = {r.p_value:.2g}"
                 + (f", minimum worth adopting {r.min_improvement:.4g}" if r.min_improvement is not None else "")
                 + "</p>")
    h.append(f"<p>{escape(why)}</p></div>")
    cand = by_name.get(winner) if winner else None
    if cand is not None:
        keys = [k for k in searched if k in cand.spec.parameters]
        rows = "".join(
            f"<tr><td>{escape(k)}</td><td>{_fmt(base.get(k, '—'))}</td><td><b>{_fmt(cand.spec.parameters[k])}</b>"
            f"{'' if base.get(k) != cand.spec.parameters[k] else ' (same)'}</td></tr>" for k in keys)
        h.append(f"<div><table><tr><th>parameter</th><th>baseline</th><th>{escape(cand.metadata.name)}</th></tr>"
                 f"{rows}</table></div>")
    h.append("</section>")
    return "".join(h)


def _role(t: Trial) -> tuple[str, str]:
    """(role for filtering, tag html)."""
    if t.spec.purpose == "rerun":
        if t.spec.rerun_of == "baseline":
            return "baseline", "<span class='tag baseline'>baseline run</span>"
        return "rerun", f"<span class='tag rerun'>re-run of {escape(t.spec.rerun_of or '?')}</span>"
    return "search", ""


def _table(trials: list[Trial], params: list[str], metric: str) -> str:
    phases = sorted({phase_of(t) for t in trials})
    opts = "".join(f"<option value='{p}'>{p}</option>" for p in phases)
    h = ["<div class='filters'><input id='filter' type='search' placeholder='filter: trial name, parameter value, "
         "message…' aria-label='filter trials'><select id='phase' aria-label='phase'><option value=''>all trials"
         f"</option>{opts}<option value='rerun'>re-runs</option><option value='baseline'>baseline runs</option>"
         "</select><span id='shown'></span><span class='note'>click a column to sort</span></div>"]
    h.append("<table id='trials'><thead><tr><th>trial</th><th>phase</th><th>step</th>"
             f"<th>{escape(metric)}</th>" + "".join(f"<th>{escape(p)}</th>" for p in params)
             + "<th>note</th></tr></thead><tbody>")
    for t in sorted(trials, key=lambda t: t.spec.number):
        role, tag = _role(t)
        ph = phase_of(t)
        cls = " ".join(c for c in (ph, "rerun" if role != "search" else "", "bad" if ph in ("Infeasible", "Failed")
                                   else "") if c)
        note = t.status.stop_reason.message if t.status.stop_reason else t.status.message
        cells = [f"<td data-v='{t.spec.number}'>{escape(t.metadata.name)}{tag}</td>",
                 f"<td class='phase' data-v='{ph}'>{ph}</td>",
                 f"<td class='num' data-v='{t.status.last_step if t.status.last_step is not None else ''}'>"
                 f"{t.status.last_step if t.status.last_step is not None else ''}</td>",
                 f"<td class='num' data-v='{_num(t.status.objective)}'>{_num(t.status.objective)}</td>"]
        for p in params:
            v = t.spec.parameters.get(p)
            cells.append(f"<td class='num' data-v='{escape(str(v)) if v is not None else ''}'>"
                         f"{_fmt(v) if v is not None else ''}</td>")
        cells.append(f"<td class='note'>{escape(note)}</td>")
        h.append(f"<tr class='{cls}' data-phase='{ph}' data-role='{role}'>{''.join(cells)}</tr>")
    h.append("</tbody></table>")
    return "".join(h)


def render_report(study: Study, rnd: Round, trials: list[Trial], analysis: Analysis | None = None, *,
                  plotly_src: str | None = None, live: str | None = None, version: str = "",
                  nav: str = "") -> str:
    """The report page. `plotly_src`: a URL to load plotly.js from (default: inlined, so the
    file works offline); `live`: the URL of the Round's version, polled to update the page."""
    s = resolve(study, rnd)
    a = analysis or analyze_round(study, rnd, trials)
    space = SearchSpace.of(rnd.spec)
    params = list(space.parameters)
    names = [p.name for p in params]
    st = rnd.status
    search = [t for t in trials if t.spec.purpose == "search"]
    if plotly_src:
        plotly = f"<script src='{escape(plotly_src)}'></script>"
    else:
        from plotly.offline import get_plotlyjs

        plotly = f"<script>{get_plotlyjs()}</script>"
    body_attrs = f" data-live='{escape(live)}' data-version='{escape(version)}'" if live else ""
    h = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
         f"<meta name='viewport' content='width=device-width,initial-scale=1'><link rel='icon' href='data:,'>"
         f"<title>kubetune · {escape(rnd.metadata.name)}</title><style>{CSS}</style>{plotly}"
         f"<script>{SCRIPT}</script></head><body{body_attrs}>"]
    if live:
        h.append("<span class='live' id='live'>live</span>")
    h.append(nav)
    h.append("<div id='content'>")
    c = st.counts
    h.append(f"<h1>Round {escape(rnd.metadata.name)} <span class='badge'>{escape(st.phase or 'Pending')}</span></h1>")
    h.append(f"<p class='goal'>{escape(rnd.spec.goal)}</p>")
    h.append(f"<p class='meta'>Study <b>{escape(study.metadata.name)}</b> · objective <b>{escape(s.metric)}</b> "
             f"({s.direction}, {s.strategy} value) · algorithm {escape(s.algorithm)} · early stopping "
             f"{escape(s.stopping.rule)} · trials {escape(st.progress)}: {c.succeeded} succeeded, {c.early_stopped} "
             f"early-stopped, {c.infeasible} infeasible, {c.failed} failed"
             f"{', ' + str(c.running + c.pending) + ' running' if c.running + c.pending else ''}.</p>")

    h.append(_recommendation(study, trials, a, s.metric, names))

    h.append("<h2>What to check</h2>")
    shown = set(a.skipped) | ({a.reruns.message} if a.reruns else set())  # the recommendation says that one
    warn = [m for m in a.messages if m not in shown]
    if warn:
        h.append("<ul class='msg'>" + "".join(f"<li class='warn'>{escape(m)}</li>" for m in warn) + "</ul>")
    else:
        h.append("<p>No warnings: no best trial sits on a boundary, no region diverges, the top curves look healthy.</p>")
    if a.skipped:
        h.append("<ul class='msg'>" + "".join(f"<li class='skipped'>{escape(m)}</li>" for m in a.skipped) + "</ul>")

    h.append("<h2>The search</h2><p class='note'>Hover a point for its trial, parameters and value; drag to zoom, "
             "double-click to reset. Filled: succeeded; hollow: early-stopped at their value so far; red ✕: "
             "infeasible or failed (no value, drawn at the worst value seen).</p><div class='grid'>")
    h.append(_figure("history", figures.history(search, params, s.metric, s.direction)))
    h.append(_figure("importance", figures.importance(a)))
    if a.importance_basis and a.importance:
        h.append(f"</div><p class='note' id='importance-basis'>Importance rests on {escape(a.importance_basis)}."
                 "</p><div class='grid'>")
    for p in params:
        h.append(_figure(f"slice-{p.name}", figures.slice_plot(p, search, params, s.metric, s.direction,
                                                               p.name in space.scientific)))
    h.append(_figure("contour", figures.contour(search, space, a, s.metric, s.direction)))
    h.append(_figure("parallel", figures.parallel(search, params, s.metric, s.direction), wide=True))
    h.append("</div>")

    h.append("<h2>Training curves</h2><div class='grid'>")
    h.append(_figure("curves", figures.curves(trials, a, params, s.metric, s.direction), wide=True))
    h.append("</div>")
    if a.curves:
        h.append("<ul class='msg'>" + "".join(f"<li>{escape(f.message)}</li>" for f in a.curves) + "</ul>")

    if a.isolation or a.reruns:
        h.append("<h2>Isolation and re-runs</h2><p class='note'>Isolation: each scientific value's trials (nuisance "
                 "parameters varied) and its best, the value with the nuisance parameters tuned out. Re-runs: the "
                 "best configurations and the baseline trained again with new seeds.</p><div class='grid'>")
        for p in space.parameters:
            if p.name in space.scientific:
                h.append(_figure(f"isolation-{p.name}", figures.isolation(p, trials, a, params, s.metric, s.direction)))
        h.append(_figure("reruns", figures.reruns(trials, a, s.metric)))
        h.append("</div>")

    h.append("<h2>All trials</h2>")
    h.append(_table(trials, names, s.metric))
    h.append("</div><footer>Generated by kubetune.</footer>")
    if live:
        h.append(f"<script>{LIVE}</script>")
    h.append("</body></html>")
    return "".join(h)


def figure_keys(html: str) -> list[str]:
    """The plots a rendered page holds, by key (for tests and the dashboard)."""
    import re

    return re.findall(r"data-plot='([^']+)'", html)

