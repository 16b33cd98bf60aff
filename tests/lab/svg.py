"""A hand-written SVG line plot of leechers' progress against time, with the bound marked."""

from xml.sax.saxutils import escape

WIDTH, HEIGHT = 760, 440
LEFT, RIGHT, TOP, BOTTOM = 60, 150, 40, 50
COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]


def _ticks(top, count=6):
    """Round tick values from 0 to at least `top`."""
    raw = top / count
    step = next(s * 10**e for e in range(-2, 6) for s in (1, 2, 5) if s * 10**e >= raw)
    n = int(top / step) + 1
    return [i * step for i in range(n + 1)]


def progress_plot(path, title, series, marks):
    """Write an SVG: `series` is [(label, [(secs, fraction 0..1), ...])], `marks` is
    [(label, secs, colour)] drawn as dashed vertical lines (the bound, the finish)."""
    t_max = max([t for _, pts in series for t, _ in pts] + [s for _, s, _ in marks] + [1.0])
    xs = _ticks(t_max)
    x_top = xs[-1]
    pw, ph = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(t):
        return LEFT + pw * t / x_top

    def y(f):
        return TOP + ph * (1 - f)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" font-family="sans-serif" font-size="12">',
        f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
        f'<text x="{WIDTH / 2}" y="22" text-anchor="middle" font-size="14">{escape(title)}</text>',
    ]
    for t in xs:
        out.append(f'<line x1="{x(t):.1f}" y1="{TOP}" x2="{x(t):.1f}" y2="{TOP + ph}" stroke="#eee"/>')
        out.append(f'<text x="{x(t):.1f}" y="{TOP + ph + 16}" text-anchor="middle">{t:g}</text>')
    for f in (0, 0.25, 0.5, 0.75, 1.0):
        out.append(f'<line x1="{LEFT}" y1="{y(f):.1f}" x2="{LEFT + pw}" y2="{y(f):.1f}" stroke="#eee"/>')
        out.append(f'<text x="{LEFT - 6}" y="{y(f) + 4:.1f}" text-anchor="end">{int(f * 100)}%</text>')
    out.append(f'<rect x="{LEFT}" y="{TOP}" width="{pw}" height="{ph}" fill="none" stroke="#444"/>')
    out.append(f'<text x="{LEFT + pw / 2}" y="{HEIGHT - 12}" text-anchor="middle">seconds since the leechers started</text>')
    for n, (label, pts) in enumerate(series):
        colour = COLOURS[n % len(COLOURS)]
        line = " ".join(f"{x(t):.1f},{y(min(1.0, f)):.1f}" for t, f in pts)
        out.append(f'<polyline points="{line}" fill="none" stroke="{colour}" stroke-width="1.5"/>')
        ly = TOP + 14 + 16 * n
        out.append(f'<line x1="{LEFT + pw + 10}" y1="{ly - 4}" x2="{LEFT + pw + 30}" y2="{ly - 4}" stroke="{colour}" stroke-width="2"/>')
        out.append(f'<text x="{LEFT + pw + 34}" y="{ly}">{escape(label)}</text>')
    for n, (label, secs, colour) in enumerate(marks):
        out.append(
            f'<line x1="{x(secs):.1f}" y1="{TOP}" x2="{x(secs):.1f}" y2="{TOP + ph}" stroke="{colour}" '
            'stroke-dasharray="6,4" stroke-width="1.5"/>'
        )
        out.append(f'<text x="{x(secs) + 4:.1f}" y="{TOP + ph - 8 - 14 * n}" fill="{colour}">{escape(label)}</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")
