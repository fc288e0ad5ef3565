"""Training curves as plotext charts that own their data.

Each chart keeps its series and redraws from them (``replot``: clear the data, plot,
refresh), so it can be fed epoch by epoch while training runs, and keeps its picture
across screen switches. Never a module-level plotext figure: each widget has its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from textual_plotext import PlotextPlot


class MetricChart(PlotextPlot):
    """One metric over epochs: the training curve and, when validating, the validation one.

    Extra runs (for comparing) can be overlaid with ``overlay``.
    """

    DEFAULT_CSS = """
    MetricChart { height: 1fr; min-height: 8; }
    """

    def __init__(self, metric: str, title: str, *, id: str | None = None,
                 classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.metric = metric
        self.title = title
        self._series: dict[str, list[float]] = {}
        self._overlays: dict[str, dict[str, list[float]]] = {}

    @property
    def series(self) -> Mapping[str, Sequence[float]]:
        return self._series

    def on_mount(self) -> None:
        super().on_mount()
        self.replot()

    def set_history(self, rows: Sequence[Mapping[str, float]]) -> None:
        """Replace the curves with a whole history (one mapping of logs per epoch)."""
        self._series = {}
        for row in rows:
            self._append(row)
        self.replot()

    def add_epoch(self, logs: Mapping[str, float]) -> None:
        self._append(logs)
        self.replot()

    def overlay(self, label: str, rows: Sequence[Mapping[str, float]]) -> None:
        """Draw another run's curves beside this one's (for comparing runs)."""
        series: dict[str, list[float]] = {}
        for row in rows:
            for key in (self.metric, f"val_{self.metric}"):
                if row.get(key) is not None:
                    series.setdefault(key, []).append(float(row[key]))
        self._overlays[label] = series
        self.replot()

    def clear(self) -> None:
        self._series = {}
        self._overlays = {}
        self.replot()

    def _append(self, logs: Mapping[str, float]) -> None:
        for key in (self.metric, f"val_{self.metric}"):
            value = logs.get(key)
            if value is not None:
                self._series.setdefault(key, []).append(float(value))

    def replot(self) -> None:
        plt = self.plt
        plt.clear_data()
        plt.clear_figure()
        plt.title(self.title)
        plt.xlabel("epoch")
        plt.ylabel(self.metric)
        drawn = False
        for key, values in self._series.items():
            label = "validation" if key.startswith("val_") else "training"
            plt.plot(list(range(1, len(values) + 1)), values, label=label,
                     marker="braille")
            drawn = True
        for run, series in self._overlays.items():
            for key, values in series.items():
                which = "val" if key.startswith("val_") else "train"
                plt.plot(list(range(1, len(values) + 1)), values, label=f"{run} {which}",
                         marker="braille")
                drawn = True
        if drawn:
            longest = max(len(v) for v in [*self._series.values(),
                                            *(s for o in self._overlays.values()
                                              for s in o.values())])
            plt.xlim(1, max(2, longest))
            if longest <= 20:
                plt.xticks(list(range(1, max(2, longest) + 1)))
        self.refresh()
