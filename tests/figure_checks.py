"""Checks on a drawn matplotlib figure: every labelled artist has a legend entry, legends do not
cover the data, axis labels of neighbouring panels do not overlap."""

from __future__ import annotations

import numpy as np
from matplotlib.collections import Collection
from matplotlib.container import BarContainer
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

# a legend may sit on a few of the points of an axes (a dense scatter has no free corner), not on
# a substantial part of them
MAX_COVERED = 0.05


def _labelled(ax):
    arts = [*ax.lines, *ax.collections, *ax.patches, *ax.containers]
    return [a for a in arts if str(a.get_label() or "").strip() and
            not str(a.get_label()).startswith("_")]


def _legend_texts(fig: Figure) -> dict:
    out = {}
    for ax in fig.axes:
        leg = ax.get_legend()
        if leg is not None:
            out[ax] = {t.get_text() for t in leg.get_texts()}
    for leg in fig.legends:
        out.setdefault(None, set()).update(t.get_text() for t in leg.get_texts())
    return out


def _legends(fig: Figure) -> list:
    return [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None] + \
        list(fig.legends)


def _points(ax) -> np.ndarray:
    pts = []
    for ln in ax.lines:
        xy = np.asarray(ln.get_xydata(), dtype=float)
        if len(xy):
            pts.append(ax.transData.transform(xy))
    for c in ax.collections:
        off = c.get_offsets()
        if len(off):
            pts.append(ax.transData.transform(np.asarray(off, dtype=float)))
    if not pts:
        return np.zeros((0, 2))
    p = np.concatenate(pts)
    return p[np.isfinite(p).all(axis=1)]


def figure_problems(fig: Figure) -> list[str]:
    """What is wrong with ``fig`` (empty: nothing found)."""
    problems = []
    fig.canvas.draw()
    texts = _legend_texts(fig)
    renderer = fig.canvas.get_renderer()
    for i, ax in enumerate(fig.axes):
        title = ax.get_title() or f"axes {i}"
        # an entry shared by the panels may sit in one panel's legend
        every = set().union(*texts.values()) if texts else set()
        for art in _labelled(ax):
            if isinstance(art, Line2D | Collection | Patch | BarContainer) and \
                    art.get_label() not in every:
                problems.append(f"{title}: {art.get_label()!r} has no legend entry")
        styles = {(h.get_linestyle(), h.get_marker()) for lg in _legends(fig)
                  for h in lg.legend_handles if isinstance(h, Line2D)}
        line_styles = {ls for ls, _ in styles}
        for ln in ax.lines:
            label = str(ln.get_label())
            # a line kept out of the legend on purpose ("_theory") is drawn in a style that the
            # legend explains with a style entry
            if label.startswith("_") and not label.startswith(("_child", "_nolegend_")) and \
                    ln.get_linestyle() not in line_styles:
                problems.append(f"{title}: {label!r} lines ({ln.get_linestyle()}) have no "
                                f"style entry in a legend")
            # a drawn line left without a label (matplotlib names it _childN) says nothing
            if str(ln.get_label()).startswith("_child") and len(ln.get_xydata()) > 1:
                problems.append(f"{title}: a line without a label (no legend entry)")
        if len(_points(ax)) and ax.yaxis.get_visible() and ax.get_ylabel():
            lo, hi = sorted(ax.get_ylim())
            shown = [t for t in [*ax.yaxis.get_majorticklabels(),
                                 *ax.yaxis.get_minorticklabels()]
                     if t.get_text().strip() and lo <= t.get_position()[1] <= hi]
            if not shown:
                problems.append(f"{title}: no y tick labels")
        leg = ax.get_legend()
        if leg is not None:
            box = leg.get_window_extent(renderer)
            pts = _points(ax)
            inside = ((pts[:, 0] > box.x0) & (pts[:, 0] < box.x1) & (pts[:, 1] > box.y0) &
                      (pts[:, 1] < box.y1)) if len(pts) else np.zeros(0, bool)
            if len(pts) and inside.mean() > MAX_COVERED:
                problems.append(f"{title}: legend covers {inside.sum()} of {len(pts)} points")
    # y labels must not run into the neighbouring panel
    boxes = [(ax, ax.get_tightbbox(renderer)) for ax in fig.axes if ax.get_visible()]
    for ax, _ in boxes:
        lab = ax.yaxis.label
        if not lab.get_text():
            continue
        lb = lab.get_window_extent(renderer)
        for other, _ in boxes:
            if other is ax or other in (getattr(ax, "_twinned_axes", None) or []):
                continue
            if ax.get_shared_x_axes().joined(ax, other) and abs(
                    ax.get_position().x0 - other.get_position().x0) < 1e-6:
                continue
            pos = other.get_window_extent(renderer)
            if lb.overlaps(pos) and other.get_position().x1 <= ax.get_position().x0 + 1e-6:
                problems.append(f"{ax.get_title() or 'axes'}: y label {lab.get_text()!r} "
                                f"overlaps the panel to its left")
    return problems
