"""Render a CI neighbourhood (``{"nodes": [...], "edges": [...]}``) as Graphviz DOT,
Mermaid or SVG. Pure: the SVG is laid out and drawn here, with no system binary.

The SVG layout is layered by kind (applications on top, sites at the bottom, the way the
infra team draws its map); within a layer, nodes are ordered to reduce crossings (a few
barycentre sweeps), then spaced evenly.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any
from xml.sax.saxutils import escape

__all__ = ["to_dot", "to_mermaid", "to_svg"]

# Top to bottom.
LAYERS = {
    "service": 0,
    "application": 1,
    "database": 2,
    "server": 3,
    "cluster": 4,
    "host": 5,
    "network_link": 6,
    "site": 6,
}
COLOURS = {
    "site": "#8c564b",
    "cluster": "#9467bd",
    "host": "#1f77b4",
    "server": "#2ca02c",
    "database": "#ff7f0e",
    "application": "#d62728",
    "service": "#e377c2",
    "network_link": "#7f7f7f",
}
SHAPES_DOT = {
    "site": "house",
    "cluster": "box3d",
    "host": "box",
    "server": "box",
    "database": "cylinder",
    "application": "component",
    "service": "ellipse",
    "network_link": "hexagon",
}

Node = Mapping[str, Any]
Edge = Mapping[str, Any]


def _dot_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ") + '"'


def to_dot(nodes: Sequence[Node], edges: Sequence[Edge], *, center: str | None = None) -> str:
    """Graphviz DOT (``dot -Tsvg`` renders it)."""
    lines = ["digraph cmdb {", "  rankdir=BT;", '  node [fontname="Helvetica", fontsize=10];']
    for n in nodes:
        attrs = {
            "label": f"{n['name']}\\n{n['key']}",
            "shape": SHAPES_DOT.get(n["kind"], "box"),
            "color": COLOURS.get(n["kind"], "#333333"),
        }
        if n.get("status") in ("retired", "planned"):
            attrs["style"] = "dashed"
        if n["key"] == center:
            attrs["penwidth"] = "3"
        rendered = ", ".join(
            f"{k}={_dot_quote(v) if k != 'label' else _dot_label(v)}" for k, v in attrs.items()
        )
        lines.append(f"  {_dot_quote(n['key'])} [{rendered}];")
    for e in edges:
        lines.append(
            f"  {_dot_quote(e['source'])} -> {_dot_quote(e['target'])} "
            f"[label={_dot_quote(e['type'])}];"
        )
    lines.append("}")
    return "\n".join(lines) + "\n"


def _dot_label(text: str) -> str:
    # Keep the \n line break of the label, escape the rest.
    parts = text.split("\\n")
    return '"' + "\\n".join(p.replace("\\", "\\\\").replace('"', '\\"') for p in parts) + '"'


_MERMAID_SAFE = re.compile(r"[^A-Za-z0-9_]")


def _mermaid_id(key: str, index: int) -> str:
    return f"n{index}_{_MERMAID_SAFE.sub('_', key)[:40]}"


def _mermaid_text(text: str) -> str:
    # Mermaid labels in double quotes accept entity codes for the quote itself.
    return text.replace('"', "#quot;").replace("\n", " ")


def to_mermaid(nodes: Sequence[Node], edges: Sequence[Edge], *, center: str | None = None) -> str:
    """A Mermaid ``flowchart`` (GitLab, GitHub and many wikis render it)."""
    ids = {n["key"]: _mermaid_id(n["key"], i) for i, n in enumerate(nodes)}
    lines = ["flowchart BT"]
    for n in nodes:
        label = _mermaid_text(f"{n['name']}<br/>{n['key']}")
        lines.append(f'  {ids[n["key"]]}["{label}"]')
    for e in edges:
        if e["source"] in ids and e["target"] in ids:
            lines.append(f"  {ids[e['source']]} -->|{_mermaid_text(e['type'])}| {ids[e['target']]}")
    for kind, colour in COLOURS.items():
        lines.append(f"  classDef {kind} stroke:{colour},stroke-width:2px")
    for n in nodes:
        lines.append(f"  class {ids[n['key']]} {n['kind']}")
    if center in ids:
        lines.append(f"  style {ids[center]} stroke-width:4px")
    return "\n".join(lines) + "\n"


# -- SVG ------------------------------------------------------------------------------------

BOX_W, BOX_H, GAP_X, GAP_Y, MARGIN = 170, 44, 30, 70, 20


def _layout(nodes: Sequence[Node], edges: Sequence[Edge]) -> dict[str, tuple[float, float]]:
    layers: dict[int, list[str]] = {}
    for n in nodes:
        layers.setdefault(LAYERS.get(n["kind"], 3), []).append(n["key"])
    ranks = sorted(layers)
    order = {r: sorted(layers[r]) for r in ranks}
    neighbours: dict[str, list[str]] = {}
    for e in edges:
        neighbours.setdefault(e["source"], []).append(e["target"])
        neighbours.setdefault(e["target"], []).append(e["source"])
    for _sweep in range(4):  # barycentre heuristic, down then up
        for seq in (ranks, ranks[::-1]):
            pos = {k: i for r in ranks for i, k in enumerate(order[r])}
            for r in seq:

                def bary(key: str, pos: dict[str, int] = pos, r: int = r) -> tuple[float, str]:
                    near = [pos[m] for m in neighbours.get(key, ()) if m in pos]
                    return (sum(near) / len(near) if near else float(pos[key]), key)

                order[r] = sorted(order[r], key=bary)
    width = max((len(v) for v in order.values()), default=1)
    coords: dict[str, tuple[float, float]] = {}
    total_w = width * (BOX_W + GAP_X)
    for row, r in enumerate(ranks):
        keys = order[r]
        offset = (total_w - len(keys) * (BOX_W + GAP_X)) / 2
        for i, key in enumerate(keys):
            x = MARGIN + offset + i * (BOX_W + GAP_X)
            y = MARGIN + row * (BOX_H + GAP_Y)
            coords[key] = (x, y)
    return coords


def _shorten(text: str, limit: int = 26) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def to_svg(
    nodes: Sequence[Node], edges: Sequence[Edge], *, center: str | None = None, title: str = ""
) -> str:
    """A standalone SVG picture of the neighbourhood."""
    coords = _layout(nodes, edges)
    if coords:
        width = max(x for x, _ in coords.values()) + BOX_W + MARGIN
        height = max(y for _, y in coords.values()) + BOX_H + MARGIN
    else:
        width, height = 2 * MARGIN + BOX_W, 2 * MARGIN + BOX_H
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="Helvetica, Arial, sans-serif" '
        'font-size="11" role="img">',
        f"<title>{escape(title or 'CMDB')}</title>",
        "<defs><marker id='arrow' viewBox='0 0 10 10' refX='10' refY='5' markerWidth='7' "
        "markerHeight='7' orient='auto-start-reverse'><path d='M 0 0 L 10 5 L 0 10 z' "
        "fill='#555'/></marker></defs>",
        '<rect width="100%" height="100%" fill="#ffffff"/>',
    ]
    for e in edges:
        if e["source"] not in coords or e["target"] not in coords:
            continue
        (sx, sy), (tx, ty) = coords[e["source"]], coords[e["target"]]
        x1, x2 = sx + BOX_W / 2, tx + BOX_W / 2
        y1, y2 = (sy + BOX_H, ty) if sy < ty else (sy, ty + BOX_H)
        if sy == ty:
            y1, y2 = sy + BOX_H / 2, ty + BOX_H / 2
            x1, x2 = (sx + BOX_W, tx) if sx < tx else (sx, tx + BOX_W)
        dash = ' stroke-dasharray="4 3"' if e["type"] == "member_of" else ""
        out.append(
            f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="#555" '
            f'stroke-width="1.2" marker-end="url(#arrow)"{dash}>'
            f"<title>{escape(e['source'])} {escape(e['type'])} {escape(e['target'])}</title>"
            "</line>"
        )
        out.append(
            f'<text x="{(x1 + x2) / 2 + 4:.1f}" y="{(y1 + y2) / 2:.1f}" fill="#555" '
            f'font-size="9">{escape(e["type"])}</text>'
        )
    for n in nodes:
        if n["key"] not in coords:
            continue
        x, y = coords[n["key"]]
        colour = COLOURS.get(n["kind"], "#333333")
        stroke = 3 if n["key"] == center else 1.5
        dash = ' stroke-dasharray="5 3"' if n.get("status") in ("retired", "planned") else ""
        out.append(
            f"<g><title>{escape(n['key'])} ({escape(str(n.get('status', '')))})</title>"
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{BOX_W}" height="{BOX_H}" rx="6" '
            f'fill="#fafafa" stroke="{colour}" stroke-width="{stroke}"{dash}/>'
            f'<text x="{x + BOX_W / 2:.1f}" y="{y + 18:.1f}" text-anchor="middle" '
            f'font-weight="bold">{escape(_shorten(str(n["name"])))}</text>'
            f'<text x="{x + BOX_W / 2:.1f}" y="{y + 34:.1f}" text-anchor="middle" '
            f'fill="{colour}">{escape(_shorten(n["key"], 30))}</text></g>'
        )
    out.append("</svg>")
    return "\n".join(out) + "\n"
