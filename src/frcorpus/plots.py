"""The matplotlib style shared by the dataset card's plots and the evaluation report's chart.

Figures are drawn on matplotlib's Agg canvas under a fixed style, size and dpi, and saved without
metadata, so that the same data gives the same PNG bytes on every machine and every run.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator

STYLE = {
    "font.family": "DejaVu Sans",  # shipped with matplotlib: the same glyphs (é, «, ’) on every machine
    "font.size": 10,
    "axes.titlesize": 12,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "axes.labelsize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.axisbelow": True,
    "grid.color": "#e3e3e3",
    "grid.linewidth": 0.8,
    "legend.frameon": False,
    "figure.dpi": 100,
    "savefig.dpi": 110,
    "path.simplify": False,
}


@contextlib.contextmanager
def fixed_style() -> Iterator[None]:
    """matplotlib's defaults plus STYLE while drawing, whatever the user's matplotlibrc says."""
    import matplotlib as mpl

    with mpl.rc_context():
        mpl.rcdefaults()  # a user's matplotlibrc must not change the bytes
        mpl.rcParams.update(STYLE)
        yield


def figure(width: float, height: float):
    """A figure on its own Agg canvas (no pyplot: no global state, no display)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def png(fig) -> bytes:
    """The figure as PNG bytes, without the software version or a date in the file."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()
