"""Tiny inline-SVG charts (no JS): a line chart of percentages and grouped/stacked bars."""

from __future__ import annotations

from django.utils.html import escape
from django.utils.safestring import mark_safe

PALETTE = ("#2b6cb0", "#dd6b20", "#38a169", "#c53030", "#6b46c1", "#718096", "#d69e2e")


def line_chart(labels: list[str], series: dict[str, list[float | None]], *, width=760, height=220,
               y_max: float | None = None, unit: str = "%") -> str:
    if not labels:
        return ""
    pad_l, pad_b, pad_t, pad_r = 44, 28, 12, 12
    values = [v for vs in series.values() for v in vs if v is not None]
    top = y_max if y_max is not None else (max(values) if values else 1) or 1
    w, h = width - pad_l - pad_r, height - pad_t - pad_b
    step = w / max(1, len(labels) - 1)

    def xy(i, v):
        return pad_l + i * step, pad_t + h - (v / top) * h

    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" width="100%" role="img">']
    for frac in (0, 0.25, 0.5, 0.75, 1):
        y = pad_t + h - frac * h
        parts.append(f'<line x1="{pad_l}" x2="{width - pad_r}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e2e8f0"/>'
                     f'<text x="{pad_l - 4}" y="{y + 4:.1f}" font-size="10" text-anchor="end">'
                     f'{top * frac:.0f}{unit}</text>')
    every = max(1, len(labels) // 10)
    for i, lab in enumerate(labels):
        if i % every == 0:
            x, _ = xy(i, 0)
            parts.append(f'<text x="{x:.1f}" y="{height - 8}" font-size="10" text-anchor="middle">{escape(lab)}</text>')
    for n, (name, vs) in enumerate(series.items()):
        color = PALETTE[n % len(PALETTE)]
        pts = " ".join(f"{xy(i, v)[0]:.1f},{xy(i, v)[1]:.1f}" for i, v in enumerate(vs) if v is not None)
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="{pts}"/>')
        parts.append(f'<text x="{pad_l + 8 + n * 110}" y="{pad_t + 10}" font-size="11" fill="{color}">'
                     f'■ {escape(name)}</text>')
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every text is escaped above


def stacked_bars(labels: list[str], series: dict[str, list[float]], *, width=760, height=240,
                 unit: str = "", alert: set[int] | None = None) -> str:
    if not labels:
        return ""
    pad_l, pad_b, pad_t, pad_r = 48, 28, 22, 12
    totals = [sum(vs[i] for vs in series.values()) for i in range(len(labels))]
    top = max(totals) or 1
    w, h = width - pad_l - pad_r, height - pad_t - pad_b
    bw = w / len(labels)
    parts = [f'<svg class="chart" viewBox="0 0 {width} {height}" width="100%" role="img">']
    for frac in (0, 0.5, 1):
        y = pad_t + h - frac * h
        parts.append(f'<line x1="{pad_l}" x2="{width - pad_r}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e2e8f0"/>'
                     f'<text x="{pad_l - 4}" y="{y + 4:.1f}" font-size="10" text-anchor="end">'
                     f'{top * frac:,.0f}{unit}</text>')
    every = max(1, len(labels) // 10)
    for i, lab in enumerate(labels):
        x = pad_l + i * bw
        base = pad_t + h
        for n, vs in enumerate(series.values()):
            bh = vs[i] / top * h
            base -= bh
            parts.append(f'<rect x="{x + 1:.1f}" y="{base:.1f}" width="{max(1, bw - 2):.1f}" height="{bh:.1f}" '
                         f'fill="{PALETTE[n % len(PALETTE)]}"/>')
        if alert and i in alert:
            parts.append(f'<text x="{x + bw / 2:.1f}" y="{base - 3:.1f}" font-size="12" text-anchor="middle" '
                         f'fill="#c53030">▲</text>')
        if i % every == 0:
            parts.append(f'<text x="{x + bw / 2:.1f}" y="{height - 8}" font-size="10" text-anchor="middle">'
                         f'{escape(lab)}</text>')
    for n, name in enumerate(series):
        parts.append(f'<text x="{pad_l + 8 + n * 110}" y="{12}" font-size="11" fill="{PALETTE[n % len(PALETTE)]}">'
                     f'■ {escape(name)}</text>')
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308
