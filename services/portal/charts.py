"""Charts drawn on the server as accessible SVG: pure functions from figures to markup.

Every chart is an ``<svg role="img">`` named by its ``<title>`` and described by its
``<desc>`` (which lists every figure, so a screen reader hears the data), and each bar
carries its label and its value as text: nothing is told by colour alone. The figures are
also shown as a table beside each chart. No script, no external resource.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape

from markupsafe import Markup

INK = "#1b1b1b"
BAR = "#12355b"
TARGET = "#b3261e"
FONT = 'font-family="system-ui, sans-serif" font-size="13"'
_ids = itertools.count(1)


@dataclass(frozen=True)
class Bar:
    """One bar: what it stands for, its value, and the value as a reader should see it."""

    label: str
    value: float
    shown: str


def _header(title: str, desc: str, width: int, height: int) -> tuple[str, str]:
    n = next(_ids)
    tid, did = f"chart-{n}-title", f"chart-{n}-desc"
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" '
        f'aria-labelledby="{tid} {did}" viewBox="0 0 {width} {height}" '
        f'width="100%" preserveAspectRatio="xMinYMin meet" {FONT}>'
        f'<title id="{tid}">{escape(title)}</title><desc id="{did}">{escape(desc)}</desc>'
    )
    return head, "</svg>"


def describe(bars: Sequence[Bar], empty: str = "no figures") -> str:
    """The figures in words, for the chart's ``<desc>`` (``empty`` when there are none)."""
    return "; ".join(f"{b.label}: {b.shown}" for b in bars) or empty


def _scale(bars: Sequence[Bar], top: float | None) -> float:
    return max([b.value for b in bars] + [top or 0.0, 0.0]) or 1.0


def bar_chart(
    title: str,
    bars: Sequence[Bar],
    *,
    summary: str = "",
    target: float | None = None,
    target_label: str = "",
    maximum: float | None = None,
    width: int = 640,
    empty: str = "no figures",
) -> Markup:
    """Horizontal bars, one line each: the label on the left, the bar, its value after it;
    ``target`` draws a dashed line labelled ``target_label`` across every bar. Lengths are
    proportional to the values on a scale up to ``maximum`` (default: the largest value or
    the target). Texts come translated: ``empty`` is what a chart without bars says."""
    label_w, value_w, row, top_pad = 170, 110, 28, 24 if target is not None else 8
    plot = width - label_w - value_w
    height = top_pad + row * max(len(bars), 1) + 8
    scale = maximum or _scale(bars, target)
    desc = summary + (" " if summary else "") + describe(bars, empty)
    head, tail = _header(title, desc, width, height)
    parts = [head]
    for i, b in enumerate(bars):
        y = top_pad + i * row
        length = max(0.0, min(b.value, scale)) / scale * plot
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 18}" text-anchor="end" fill="{INK}">'
            f"{escape(_clip(b.label, 24))}</text>"
            f'<rect x="{label_w}" y="{y + 5}" width="{length:.1f}" height="{row - 10}" '
            f'fill="{BAR}"><title>{escape(b.label)}: {escape(b.shown)}</title></rect>'
            f'<text x="{label_w + length + 6:.1f}" y="{y + 18}" fill="{INK}">'
            f"{escape(b.shown)}</text>"
        )
    if not bars:
        parts.append(f'<text x="{label_w}" y="{top_pad + 18}" fill="{INK}">{escape(empty)}</text>')
    if target is not None:
        x = label_w + min(target, scale) / scale * plot
        parts.append(
            f'<line x1="{x:.1f}" y1="{top_pad - 4}" x2="{x:.1f}" y2="{height - 4}" '
            f'stroke="{TARGET}" stroke-width="2" stroke-dasharray="6 4"/>'
            f'<text x="{x:.1f}" y="{top_pad - 8}" text-anchor="middle" fill="{TARGET}">'
            f"{escape(target_label)}</text>"
        )
    parts.append(tail)
    return Markup("".join(parts))


def column_chart(
    title: str,
    bars: Sequence[Bar],
    *,
    summary: str = "",
    width: int = 640,
    height: int = 240,
    empty: str = "no figures",
) -> Markup:
    """Vertical columns over time (months): the label under each column and its value on
    top; heights proportional to the values."""
    left, bottom, top = 8, 36, 22
    slot = (width - 2 * left) / max(len(bars), 1)
    plot = height - bottom - top
    scale = _scale(bars, None)
    desc = summary + (" " if summary else "") + describe(bars, empty)
    head, tail = _header(title, desc, width, height)
    parts = [head]
    base = height - bottom
    parts.append(f'<line x1="{left}" y1="{base}" x2="{width - left}" y2="{base}" stroke="{INK}"/>')
    for i, b in enumerate(bars):
        x = left + i * slot
        h = max(0.0, b.value) / scale * plot
        cx = x + slot / 2
        parts.append(
            f'<rect x="{x + slot * 0.15:.1f}" y="{base - h:.1f}" width="{slot * 0.7:.1f}" '
            f'height="{h:.1f}" fill="{BAR}"><title>{escape(b.label)}: {escape(b.shown)}'
            f"</title></rect>"
            f'<text x="{cx:.1f}" y="{base - h - 5:.1f}" text-anchor="middle" fill="{INK}">'
            f"{escape(b.shown)}</text>"
            f'<text x="{cx:.1f}" y="{base + 16}" text-anchor="middle" fill="{INK}">'
            f"{escape(_clip(b.label, 8))}</text>"
        )
    parts.append(tail)
    return Markup("".join(parts))


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


__all__ = ["Bar", "bar_chart", "column_chart", "describe"]
