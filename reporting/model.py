"""What a report is, independent of its format: a title, the normalised parameters, the
denominators its shares are fractions of, tables of typed columns, charts and notes.

Renderers (reporting.render) and the management pages only read these objects. Charts draw
themselves with matplotlib's object API on the Agg canvas (no pyplot state, so concurrent
requests never share a figure).
"""

from __future__ import annotations

import datetime as dt
import io
import re
from dataclasses import dataclass, field
from typing import Any

__all__ = ["COLUMN_TYPES", "Chart", "Column", "GanttBar", "Report", "Table"]

# "days" and "decimal" are numbers with decimals, "share" a fraction (0..1), "eur" euros.
COLUMN_TYPES = ("text", "int", "days", "decimal", "share", "date", "month", "eur")


@dataclass
class Column:
    """One column of a table: the key in each row dict, its French header, its type."""

    key: str
    label: Any  # str or a lazy string; str() it when rendering
    type: str = "text"

    def __post_init__(self) -> None:
        if self.type not in COLUMN_TYPES:
            raise ValueError(f"column {self.key}: unknown type {self.type!r}")


@dataclass
class Table:
    """Rows of one table, with its columns and an optional "Total" line (same keys)."""

    name: str
    title: Any
    columns: list[Column]
    rows: list[dict[str, Any]]
    total: dict[str, Any] | None = None


@dataclass
class GanttBar:
    """One project on the timeline: planned span, forecast end, health colour."""

    label: str
    start: dt.date
    planned_end: dt.date
    forecast_end: dt.date | None
    health: str


_HEALTH_COLOURS = {"green": "#2e7d32", "amber": "#f9a825", "red": "#c62828"}
_PALETTE = ("#1f4e79", "#8fb8de", "#e07b39", "#6a994e", "#9c6644", "#7b2cbf", "#adb5bd")
_SVG_PROLOG = re.compile(r"^\s*<\?xml[^>]*>\s*(<!DOCTYPE[^>]*>\s*)?", re.S)


@dataclass
class Chart:
    """A chart of a report. ``kind`` is ``bar`` (grouped vertical bars), ``barh``
    (horizontal bars, one series) or ``gantt`` (a project timeline, from ``bars``).

    ``series`` is a list of ``(label, values)`` aligned with ``categories``.
    """

    title: Any
    alt: Any
    kind: str = "bar"
    categories: list[str] = field(default_factory=list)
    series: list[tuple[str, list[float]]] = field(default_factory=list)
    bars: list[GanttBar] = field(default_factory=list)
    unit: str = ""
    marker: dt.date | None = None  # a vertical line on the timeline (the report's month)
    legend: list[tuple[str, str]] = field(default_factory=list)  # gantt: (health, label)
    slip_label: str = ""

    # -- drawing ------------------------------------------------------------------------

    def _figure(self) -> Any:
        from matplotlib.figure import Figure

        rows = len(self.bars) if self.kind == "gantt" else len(self.categories)
        height = 3.2 if self.kind == "bar" else max(2.2, 0.9 + 0.32 * max(rows, 1))
        fig = Figure(figsize=(8.0, height), dpi=100, layout="constrained")
        ax = fig.add_subplot()
        ax.set_title(str(self.title), fontsize=11, loc="left")
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        if self.kind == "gantt":
            self._draw_gantt(ax)
        elif self.kind == "barh":
            self._draw_barh(ax)
        else:
            self._draw_bars(ax)
        return fig

    def _draw_bars(self, ax: Any) -> None:
        n = max(len(self.series), 1)
        width = 0.8 / n
        xs = range(len(self.categories))
        for i, (label, values) in enumerate(self.series):
            offset = (i - (n - 1) / 2) * width
            ax.bar(
                [x + offset for x in xs],
                values,
                width,
                label=label,
                color=_PALETTE[i % len(_PALETTE)],
            )
        ax.set_xticks(
            list(xs),
            self.categories,
            rotation=30 if len(self.categories) > 6 else 0,
            ha="right" if len(self.categories) > 6 else "center",
            fontsize=8,
        )
        if self.unit:
            ax.set_ylabel(self.unit, fontsize=9)
        if len(self.series) > 1:
            ax.legend(fontsize=8, frameon=False)
        if not self.categories:
            ax.text(0.5, 0.5, "—", ha="center", va="center", transform=ax.transAxes)

    def _draw_barh(self, ax: Any) -> None:
        values = self.series[0][1] if self.series else []
        ys = list(range(len(self.categories)))
        ax.barh(ys, values, color=_PALETTE[0])
        ax.set_yticks(ys, self.categories, fontsize=8)
        ax.invert_yaxis()
        if self.unit:
            ax.set_xlabel(self.unit, fontsize=9)
        for y, v in zip(ys, values, strict=True):
            ax.text(v, y, f" {v:.1f}", va="center", fontsize=7)
        if not self.categories:
            ax.text(0.5, 0.5, "—", ha="center", va="center", transform=ax.transAxes)

    def _draw_gantt(self, ax: Any) -> None:
        import matplotlib.dates as mdates

        for y, bar in enumerate(self.bars):
            start = mdates.date2num(bar.start)
            end = mdates.date2num(bar.planned_end)
            colour = _HEALTH_COLOURS.get(bar.health, _PALETTE[0])
            ax.barh(y, max(end - start, 1), left=start, height=0.5, color=colour, alpha=0.85)
            if bar.forecast_end and bar.forecast_end > bar.planned_end:
                slip = mdates.date2num(bar.forecast_end) - end
                ax.barh(y, slip, left=end, height=0.5, color=colour, alpha=0.35, hatch="//")
        ax.set_yticks(list(range(len(self.bars))), [b.label for b in self.bars], fontsize=8)
        ax.invert_yaxis()
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%m/%Y"))
        ax.tick_params(axis="x", labelsize=8)
        if self.marker is not None:
            ax.axvline(mdates.date2num(self.marker), color="#444444", linewidth=1, linestyle="--")
        if self.bars:
            from matplotlib.patches import Patch

            handles = [
                Patch(color=_HEALTH_COLOURS[h], label=label)
                for h, label in self.legend
                if any(b.health == h for b in self.bars)
            ]
            handles.append(Patch(facecolor="#bbbbbb", hatch="//", label=self.slip_label))
            ax.legend(
                handles=handles,
                fontsize=7,
                frameon=False,
                loc="upper left",
                bbox_to_anchor=(1.0, 1.0),
            )
        if not self.bars:
            ax.text(0.5, 0.5, "—", ha="center", va="center", transform=ax.transAxes)

    def svg(self) -> str:
        """The chart as SVG text (no XML prolog), to inline in an HTML page."""
        from matplotlib import rc_context

        buf = io.StringIO()
        with rc_context({"svg.fonttype": "none", "svg.hashsalt": "syndic"}):
            fig = self._figure()
            fig.savefig(buf, format="svg", metadata={"Date": None})
        return _SVG_PROLOG.sub("", buf.getvalue())

    def png(self, dpi: int = 150) -> bytes:
        """The chart as a PNG image (for PDF files)."""
        buf = io.BytesIO()
        fig = self._figure()
        fig.savefig(buf, format="png", dpi=dpi)
        return buf.getvalue()

    def spec(self) -> dict[str, Any]:
        """The chart's data (for JSON output: clients draw it their own way)."""
        out: dict[str, Any] = {"title": str(self.title), "alt": str(self.alt), "kind": self.kind}
        if self.kind == "gantt":
            out["bars"] = [
                {
                    "label": b.label,
                    "start": b.start.isoformat(),
                    "planned_end": b.planned_end.isoformat(),
                    "forecast_end": b.forecast_end.isoformat() if b.forecast_end else None,
                    "health": b.health,
                }
                for b in self.bars
            ]
        else:
            out["categories"] = list(self.categories)
            out["series"] = [{"label": lab, "values": list(v)} for lab, v in self.series]
        return out


@dataclass
class Report:
    """A built report, ready for any renderer."""

    name: str
    title: Any
    params: dict[str, Any]
    denominators: dict[str, Any]
    tables: list[Table]
    charts: list[Chart] = field(default_factory=list)
    notes: list[Any] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)  # top-level JSON members

    def table(self, name: str) -> Table:
        for t in self.tables:
            if t.name == name:
                return t
        raise KeyError(name)

    def file_stem(self) -> str:
        """A file name without extension: the report and its main parameters."""
        parts = [self.name]
        for key in ("month", "year", "from", "to"):
            value = self.params.get(key)
            if value:
                parts.append(str(value))
        return re.sub(r"[^A-Za-z0-9._-]+", "-", "_".join(parts))
