"""The leaderboard's figures as self-contained SVGs: the helpful × harmless Pareto plot (with the
calibration rows as reference lines) and the per-depth probe cosines with their intervals.

Shown through an <img> (where no script runs); every string drawn is escaped.
"""

from __future__ import annotations

import base64
import html
import math
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
           "#bcbd22", "#7f7f7f"]
BASELINE_COLOR = "#0b7285"


def _esc(text) -> str:
    return html.escape(str(text), quote=True)


def _is_baseline(table: pd.DataFrame) -> pd.Series:
    if "baseline" not in table:
        return pd.Series(False, index=table.index)
    return table["baseline"].fillna(False).astype(bool)


# --- trade-off -------------------------------------------------------------------------------

def pareto_frontier(points: Iterable[tuple[str, float, float]]) -> list[str]:
    """Names of the points no other point weakly dominates on (helpful, harmless), best helpful last."""
    points = list(points)
    frontier = []
    for name, x, y in points:
        dominated = any((ox >= x and oy >= y) and (ox > x or oy > y) for _, ox, oy in points)
        if not dominated:
            frontier.append((x, -y, name))
    return [name for _, _, name in sorted(frontier)]


def tradeoff_points(table: pd.DataFrame) -> list[tuple[str, float, float]]:
    """The models' (helpful, harmless) points; calibration rows are not models and never plotted as one."""
    rows = table[~_is_baseline(table)].dropna(subset=["helpful", "harmless"])
    return [(str(r.model), float(r.helpful), float(r.harmless)) for r in rows.itertuples()]


def baseline_levels(table: pd.DataFrame) -> list[tuple[str, float, float, float]]:
    """(label, balance, helpful, harmless) of each calibration row, read from its results."""
    rows = table[_is_baseline(table)].dropna(subset=["balance", "helpful", "harmless"])
    return [(str(r.model).rsplit("/", 1)[-1], float(r.balance), float(r.helpful), float(r.harmless))
            for r in rows.itertuples()]


def iso_balance(level: float, samples: int = 200) -> list[tuple[float, float]]:
    """Points of the curve 2xy/(x+y) = level inside the unit square: y = level·x/(2x − level)."""
    if not 0 < level < 1:
        return []
    xs = np.linspace(level / 2 + 1e-3, 1, samples)
    ys = level * xs / (2 * xs - level)
    keep = (ys >= 0) & (ys <= 1)
    return [(float(x), float(y)) for x, y in zip(xs[keep], ys[keep])]


def _spread(positions: list[float], gap: float) -> list[float]:
    """Positions moved apart (downwards, in order) so consecutive ones are at least `gap` apart."""
    out: list[float] = []
    for p in sorted(positions):
        out.append(max(p, out[-1] + gap) if out else p)
    return out


def pareto_svg(table: pd.DataFrame, x_title: str, y_title: str, balance_label: str, empty_label: str,
               baseline_label: str = "{name} {value:.3f}") -> str:
    """Models as points (the frontier filled and joined by a staircase); each calibration row as a
    teal iso-balance curve through its own point, labelled with its name and balance."""
    width, height, left, right, top, bottom = 760, 560, 70, 200, 24, 56
    plot_w, plot_h = width - left - right, height - top - bottom

    def sx(x: float) -> float:
        return left + x * plot_w

    def sy(y: float) -> float:
        return top + (1 - y) * plot_h

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>']
    for i in range(11):
        v = i / 10
        out.append(f'<line x1="{sx(v):.1f}" y1="{sy(0):.1f}" x2="{sx(v):.1f}" y2="{sy(1):.1f}" stroke="#eee"/>')
        out.append(f'<line x1="{sx(0):.1f}" y1="{sy(v):.1f}" x2="{sx(1):.1f}" y2="{sy(v):.1f}" stroke="#eee"/>')
        out.append(f'<text x="{sx(v):.1f}" y="{sy(0) + 16:.1f}" text-anchor="middle" fill="#555">{v:.1f}</text>')
        out.append(f'<text x="{sx(0) - 8:.1f}" y="{sy(v) + 4:.1f}" text-anchor="end" fill="#555">{v:.1f}</text>')
    out.append(f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#999"/>')
    out.append(f'<line x1="{sx(.5):.1f}" y1="{sy(0):.1f}" x2="{sx(.5):.1f}" y2="{sy(1):.1f}" '
               'stroke="#bbb" stroke-dasharray="5,4"/>')
    out.append(f'<line x1="{sx(0):.1f}" y1="{sy(.5):.1f}" x2="{sx(1):.1f}" y2="{sy(.5):.1f}" '
               'stroke="#bbb" stroke-dasharray="5,4"/>')
    # right-margin labels (where each curve meets x = 1), spread apart so none overlaps another
    margin_labels: list[tuple[float, str]] = []
    for level in (0.25, 0.5, 0.75):
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in iso_balance(level))
        out.append(f'<polyline points="{path}" fill="none" stroke="#c9d6ea" stroke-dasharray="2,3"/>')
        margin_labels.append((sy(level / (2 - level)) + 4, f'fill="#8aa0c0" font-size="10">'
                              f'{_esc(balance_label.format(value=level))}'))
    # calibration rows: each one's balance as a reference curve through its own point
    for name, level, hx, hy in sorted(baseline_levels(table), key=lambda b: -b[1]):
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in iso_balance(level))
        text = _esc(baseline_label.format(name=name, value=level))
        out.append(f'<polyline class="baseline-line" points="{path}" fill="none" stroke="{BASELINE_COLOR}" '
                   f'stroke-width="1.4" stroke-dasharray="7,3" stroke-opacity="0.8"><title>{text}</title></polyline>')
        px, py = sx(hx), sy(hy)
        out.append(f'<path d="M{px:.1f},{py - 5:.1f} L{px + 5:.1f},{py:.1f} L{px:.1f},{py + 5:.1f} '
                   f'L{px - 5:.1f},{py:.1f} Z" fill="white" stroke="{BASELINE_COLOR}" stroke-width="1.4">'
                   f'<title>{text}: helpful {hx:.3f}, harmless {hy:.3f}</title></path>')
        margin_labels.append((sy(level / (2 - level)) + 4, f'class="baseline-label" fill="{BASELINE_COLOR}" '
                              f'font-size="11">{text}'))
    margin_labels.sort(key=lambda label: label[0])
    for ly, (_, body) in zip(_spread([y for y, _ in margin_labels], 13), margin_labels):
        out.append(f'<text x="{sx(1) + 4:.1f}" y="{ly:.1f}" {body}</text>')
    out.append(f'<text x="{left + plot_w / 2:.1f}" y="{height - 14}" text-anchor="middle" '
               f'font-size="13">{_esc(x_title)}</text>')
    out.append(f'<text x="16" y="{top + plot_h / 2:.1f}" text-anchor="middle" font-size="13" '
               f'transform="rotate(-90 16 {top + plot_h / 2:.1f})">{_esc(y_title)}</text>')
    points = tradeoff_points(table)
    if not points:
        out.append(f'<text x="{left + plot_w / 2:.1f}" y="{top + plot_h / 2:.1f}" text-anchor="middle" '
                   f'fill="#888" font-size="15">{_esc(empty_label)}</text>')
    frontier = pareto_frontier(points)
    where = {name: (x, y) for name, x, y in points}
    if frontier:
        steps = []
        for i, name in enumerate(frontier):
            x, y = where[name]
            if i:
                steps.append(f"{sx(x):.1f},{sy(where[frontier[i - 1]][1]):.1f}")
            steps.append(f"{sx(x):.1f},{sy(y):.1f}")
        first, last = where[frontier[0]], where[frontier[-1]]
        steps = [f"{sx(0):.1f},{sy(first[1]):.1f}"] + steps + [f"{sx(last[0]):.1f},{sy(0):.1f}"]
        out.append(f'<polyline points="{" ".join(steps)}" fill="none" stroke="#d9480f" stroke-width="2" '
                   'stroke-opacity="0.75"/>')
    placed: list[tuple[float, float]] = []
    for name, x, y in sorted(points, key=lambda p: (-p[2], p[1], p[0])):
        on = name in frontier
        px, py = sx(x), sy(y)
        out.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="5.5" fill="{"#d9480f" if on else "#adb5bd"}" '
                   f'stroke="#333" stroke-width="0.8"><title>{_esc(name)}: helpful {x:.3f}, harmless {y:.3f}</title>'
                   '</circle>')
        ly = py - 8
        while any(abs(ly - qy) < 13 and abs(px - qx) < 150 for qx, qy in placed):
            ly += 13        # nudge a label down until it clears the ones already drawn nearby
        placed.append((px, ly))
        anchor, lx = ("end", px - 8) if px > left + plot_w * 0.75 else ("start", px + 8)
        out.append(f'<text x="{lx:.1f}" y="{ly:.1f}" text-anchor="{anchor}" fill="#222">{_esc(name)}</text>')
    out.append("</svg>")
    return "\n".join(out)


def svg_as_img(svg: str, alt: str) -> str:
    data = base64.b64encode(svg.encode("utf-8")).decode("ascii")
    return (f'<img src="data:image/svg+xml;base64,{data}" alt="{html.escape(alt, quote=True)}" '
            'style="max-width:100%;height:auto"/>')


# --- probe -----------------------------------------------------------------------------------

def color_map(models: Sequence[str]) -> dict[str, str]:
    """A stable colour per model (its place on the board), so curves are told apart."""
    return {str(m): PALETTE[i % len(PALETTE)] for i, m in enumerate(models)}


def legend_html(models: Sequence[str], colors: dict[str, str]) -> str:
    """Colour swatches and model ids; ids are escaped (they are text, never markup)."""
    items = [f'<span style="margin-right:1.2em;white-space:nowrap">'
             f'<span style="display:inline-block;width:1.6em;height:3px;vertical-align:middle;margin-right:.4em;'
             f'background:{colors.get(str(m), "#888")}"></span>{html.escape(str(m), quote=True)}</span>'
             for m in models]
    return f'<div style="padding:.2em 0 .6em 0;font-size:.9em">{"".join(items)}</div>'


def probe_curves(documents: Iterable[tuple[str, dict | None]], measure: str = "direction_cosine") -> pd.DataFrame:
    """Per (model, document) and distinct layer: relative depth (layer / L), the cosine and its 95% CI."""
    measure = measure if measure in ("direction_cosine", "raw_cosine") else "direction_cosine"
    rows = []
    for model, doc in documents:
        probe = (doc or {}).get("probe") or {}
        for depth in probe.get("depths") or []:
            value, interval = depth.get(measure), depth.get(f"{measure}_ci95")
            if isinstance(value, (int, float)) and math.isfinite(value):
                lo, hi = (float(interval[0]), float(interval[1])) if interval else (math.nan, math.nan)
                rows.append({"model": str(model), "rho": float(depth["rho"]), "cosine": float(value),
                             "lo": lo, "hi": hi, "tension": bool(depth.get("in_tension_index"))})
    return pd.DataFrame(rows, columns=["model", "rho", "cosine", "lo", "hi", "tension"])


def probe_svg(curves: pd.DataFrame, colors: dict[str, str], x_title: str, y_title: str, empty_label: str) -> str:
    """The per-depth cosine plot with 95% CI error bars, as a self-contained SVG (shown through an
    <img>, where no script runs); every string drawn is escaped."""
    width, height, left, right, top, bottom = 760, 440, 60, 20, 20, 50
    plot_w, plot_h = width - left - right, height - top - bottom

    def sx(x: float) -> float:
        return left + x * plot_w

    def sy(y: float) -> float:
        return top + (1 - (max(-1.0, min(1.0, y)) + 1) / 2) * plot_h

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>']
    for i in range(11):
        x, y = i / 10, -1 + i / 5
        out.append(f'<line x1="{sx(x):.1f}" y1="{sy(-1):.1f}" x2="{sx(x):.1f}" y2="{sy(1):.1f}" stroke="#eee"/>')
        out.append(f'<line x1="{sx(0):.1f}" y1="{sy(y):.1f}" x2="{sx(1):.1f}" y2="{sy(y):.1f}" stroke="#eee"/>')
        out.append(f'<text x="{sx(x):.1f}" y="{sy(-1) + 16:.1f}" text-anchor="middle" fill="#555">{x:.1f}</text>')
        out.append(f'<text x="{sx(0) - 8:.1f}" y="{sy(y) + 4:.1f}" text-anchor="end" fill="#555">{y:.1f}</text>')
    out.append(f'<line x1="{sx(0):.1f}" y1="{sy(0):.1f}" x2="{sx(1):.1f}" y2="{sy(0):.1f}" stroke="#999" '
               'stroke-dasharray="5,4"/>')
    out.append(f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="none" stroke="#999"/>')
    out.append(f'<text x="{left + plot_w / 2:.1f}" y="{height - 12}" text-anchor="middle" font-size="13">'
               f'{_esc(x_title)}</text>')
    out.append(f'<text x="16" y="{top + plot_h / 2:.1f}" text-anchor="middle" font-size="13" '
               f'transform="rotate(-90 16 {top + plot_h / 2:.1f})">{_esc(y_title)}</text>')
    if curves.empty:
        out.append(f'<text x="{left + plot_w / 2:.1f}" y="{top + plot_h / 2:.1f}" text-anchor="middle" '
                   f'fill="#888" font-size="15">{_esc(empty_label)}</text>')
    for model, rows in curves.groupby("model", sort=False):
        color = colors.get(str(model), "#888")
        rows = rows.sort_values("rho")
        points = " ".join(f"{sx(r.rho):.1f},{sy(r.cosine):.1f}" for r in rows.itertuples())
        out.append(f'<polyline points="{points}" fill="none" stroke="{color}" stroke-width="2"/>')
        for r in rows.itertuples():
            if math.isfinite(r.lo) and math.isfinite(r.hi):
                x = sx(r.rho)
                out.append(f'<line x1="{x:.1f}" y1="{sy(r.lo):.1f}" x2="{x:.1f}" y2="{sy(r.hi):.1f}" '
                           f'stroke="{color}" stroke-width="1.5"/>')
                for end in (r.lo, r.hi):
                    out.append(f'<line x1="{x - 4:.1f}" y1="{sy(end):.1f}" x2="{x + 4:.1f}" y2="{sy(end):.1f}" '
                               f'stroke="{color}" stroke-width="1.5"/>')
            interval = f" [{r.lo:+.3f}, {r.hi:+.3f}]" if math.isfinite(r.lo) else ""
            out.append(f'<circle cx="{sx(r.rho):.1f}" cy="{sy(r.cosine):.1f}" r="{4.5 if r.tension else 3.5}" '
                       f'fill="{color if r.tension else "white"}" stroke="{color}" stroke-width="1.5">'
                       f'<title>{_esc(model)}: depth {r.rho:.3f}, cosine {r.cosine:+.3f}{interval}</title></circle>')
    out.append("</svg>")
    return "\n".join(out)
