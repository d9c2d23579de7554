"""Small inline-SVG plots: scatter and line charts with log axes, no JavaScript."""
from __future__ import annotations

import math
from html import escape

W, H, PAD = 420, 260, 46
COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf"]


def _scale(lo: float, hi: float, log: bool, a: float, b: float):
    if log:
        lo, hi = math.log10(lo), math.log10(hi)
    if hi == lo:
        hi = lo + 1.0

    def f(v: float) -> float:
        v = math.log10(v) if log else v
        return a + (v - lo) / (hi - lo) * (b - a)

    return f


def _ticks(lo: float, hi: float, log: bool) -> list[float]:
    if log:
        return [10.0**e for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
                if lo <= 10.0**e <= hi] or [lo, hi]
    return [lo + (hi - lo) * i / 4 for i in range(5)]


def chart(
    title: str,
    series: list[tuple[str, list[tuple[float, float]], str]],  # (label, points, "line"|"dots")
    xlabel: str,
    ylabel: str,
    xlog: bool = False,
    marks: list[tuple[float, str]] = (),  # x positions of markers (e.g. infeasible trials) with their title
    categories: list[str] | None = None,
) -> str:
    xs = [x for _, pts, _ in series for x, _ in pts] + [m for m, _ in marks]
    ys = [y for _, pts, _ in series for _, y in pts if math.isfinite(y)]
    if not xs or not ys:
        return f'<figure><figcaption>{escape(title)}</figcaption><p class="empty">no data yet</p></figure>'
    xlo, xhi = min(xs), max(xs)
    ylo, yhi = min(ys), max(ys)
    if xlog and xlo <= 0:
        xlog = False
    ylog = ylo > 0 and yhi / ylo > 20  # losses spanning decades: the good trials stay readable
    if ylog:
        ylo, yhi = ylo / 1.2, yhi * 1.2
    else:
        pad = (yhi - ylo) * 0.05 or 0.5
        ylo, yhi = ylo - pad, yhi + pad
    if categories:
        xlo, xhi = -0.5, len(categories) - 0.5
    fx = _scale(xlo, xhi, xlog, PAD, W - 10)
    fy = _scale(ylo, yhi, ylog, H - PAD + 10, 10)
    parts = [f'<svg viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img"><title>{escape(title)}</title>',
             f'<rect x="{PAD}" y="10" width="{W - PAD - 10}" height="{H - PAD}" fill="#fafafa" stroke="#ccc"/>']
    if categories:
        for i, c in enumerate(categories):
            parts.append(f'<text x="{fx(i):.1f}" y="{H - PAD + 24}" font-size="10" text-anchor="middle">{escape(c)}</text>')
    else:
        for t in _ticks(xlo, xhi, xlog):
            parts.append(f'<text x="{fx(t):.1f}" y="{H - PAD + 24}" font-size="10" text-anchor="middle">{t:.3g}</text>')
    for t in _ticks(ylo, yhi, ylog):
        parts.append(f'<text x="{PAD - 4}" y="{fy(t) + 3:.1f}" font-size="10" text-anchor="end">{t:.3g}</text>')
    parts.append(f'<text x="{(W + PAD) / 2}" y="{H - 4}" font-size="11" text-anchor="middle">{escape(xlabel)}</text>')
    ylabel += " (log)" if ylog else ""
    parts.append(f'<text x="12" y="{H / 2}" font-size="11" text-anchor="middle" transform="rotate(-90 12 {H / 2})">{escape(ylabel)}</text>')
    for i, (label, pts, kind) in enumerate(series):
        color = COLORS[i % len(COLORS)]
        pts = [(x, y) for x, y in pts if math.isfinite(y)]
        if kind == "line" and len(pts) > 1:
            d = " ".join(f"{fx(x):.1f},{fy(y):.1f}" for x, y in sorted(pts))
            parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{d}"><title>{escape(label)}</title></polyline>')
        else:
            for x, y in pts:
                parts.append(f'<circle cx="{fx(x):.1f}" cy="{fy(y):.1f}" r="3.5" fill="{color}" fill-opacity="0.75">'
                             f'<title>{escape(label)}: {x:.4g}, {y:.4g}</title></circle>')
    for x, label in marks:
        X = fx(x)
        parts.append(f'<text x="{X:.1f}" y="{H - PAD + 6}" font-size="12" fill="#d62728" text-anchor="middle">✕<title>{escape(label)}</title></text>')
    parts.append("</svg>")
    legend = "".join(
        f'<span><i style="background:{COLORS[i % len(COLORS)]}"></i>{escape(lbl)}</span>'
        for i, (lbl, pts, kind) in enumerate(series) if pts
    )
    return f'<figure><figcaption>{escape(title)}</figcaption>{"".join(parts)}<div class="legend">{legend}</div></figure>'
