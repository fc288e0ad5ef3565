"""``convonet.rendering``: the rendering the app and headless share, rich only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from rich.console import Console
from rich.table import Table

from convonet import rendering
from convonet.rendering import (
    confusion_table,
    display_path,
    format_bytes,
    format_duration,
    history_table,
    legend,
    params_text,
    report_table,
    share_colour,
    shorten,
    status_text,
    summary_table,
    tuning_table,
)


def rendered(table: Table, width: int = 100) -> str:
    console = Console(width=width, record=True, color_system=None)
    console.print(table)
    return console.export_text()


def words(line: str) -> list[str]:
    """A table row's words, without the box lines."""
    return line.replace("│", " ").split()


def test_importing_rendering_loads_no_textual() -> None:
    code = ("import json, sys\nimport convonet.rendering\n"
            "print(json.dumps(sorted(m for m in sys.modules "
            "if m == 'textual' or m.startswith(('textual.', 'convonet.tui')))))\n")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, env=env, check=False)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []


def test_the_app_and_headless_share_one_implementation() -> None:
    from convonet.core import run_history
    from convonet.tui.widgets import heatmap, train_progress

    assert train_progress.format_duration is run_history.format_duration is format_duration
    assert heatmap.confusion_table is confusion_table


# ---- text -----------------------------------------------------------------------------
def test_durations() -> None:
    assert [format_duration(s) for s in (None, -1, float("nan"), 0.4, 42, 185, 7620)] == [
        "–", "–", "–", "0s", "42s", "3m05s", "2h07m"]


def test_byte_sizes() -> None:
    assert [format_bytes(n) for n in (0, 1023, 812 * 1024, 5 * 1024**2 // 4, 3 * 1024**3)] == [
        "0 B", "1023 B", "812 KB", "1.2 MB", "3.0 GB"]


def test_paths_below_the_working_folder_are_relative_and_home_is_a_tilde(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home, work = tmp_path / "home", tmp_path / "work"
    (home / "data").mkdir(parents=True)
    work.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    assert display_path(work / "app_results" / "m.keras") == str(Path("app_results/m.keras"))
    assert display_path(home / "data" / "train") == str(Path("~/data/train"))
    assert display_path(home) == "~"
    assert display_path(tmp_path / "elsewhere") == str(tmp_path / "elsewhere")
    assert display_path(None) == ""


def test_params_text_and_shorten() -> None:
    params = {"num_filters": 16, "init_rate": 0.02}
    assert params_text(params) == "init_rate=0.02 num_filters=16"
    assert params_text(params, ["num_filters", "missing"]) == "num_filters=16"
    assert shorten("sneaker", 10) == "sneaker" and shorten("ankle boot", 6) == "ankle…"


# ---- the heatmap ------------------------------------------------------------------------
def test_share_colours_run_from_dark_to_bright() -> None:
    dark, bright = share_colour(0.0), share_colour(1.0)
    assert dark == (24, 28, 48) and bright == (250, 230, 50)
    assert share_colour(-3) == dark and share_colour(7) == bright
    assert sum(share_colour(0.5)) > sum(dark)


def test_the_confusion_table_names_both_axes() -> None:
    matrix = np.array([[5, 1], [0, 4]])
    text = rendered(confusion_table(matrix, ["cat", "dog"]))
    assert "Confusion matrix" in text and "true \\ pred" in text
    rows = [line for line in text.splitlines() if line.startswith(("cat", "dog"))]
    assert rows[0].split() == ["cat", "5", "1", "6"]
    assert rows[1].split() == ["dog", "0", "4", "4"]
    long = rendered(confusion_table(matrix, ["T-shirt/top", "Ankle boot"], width=30), 30)
    assert "T-shir…" in long and "columns: predicted, in the" in long
    assert legend(["cat", "dog"]).plain == "0=cat  1=dog"


# ---- tables -----------------------------------------------------------------------------
def test_summary_and_history_tables() -> None:
    row = SimpleNamespace(name="conv2d", type="Conv2D", output_shape="(None, 26, 26, 8)",
                          params=80)
    summary = SimpleNamespace(name="cnn", rows=[row],
                              totals=lambda: [("Total params", 80, "320 B")])
    text = rendered(summary_table(summary))
    assert "Model cnn" in text and "conv2d (Conv2D)" in text
    assert "Total params: 80 (320 B)" in text

    rows = [SimpleNamespace(epoch=1, partial=False, loss=0.5, accuracy=0.8, val_loss=0.6,
                            val_accuracy=0.75, learning_rate=0.02, seconds=3.25),
            SimpleNamespace(epoch=2, partial=True, loss=0.4, accuracy=0.85, val_loss=None,
                            val_accuracy=None, learning_rate=0.02, seconds=1.0)]
    history = SimpleNamespace(validation=True, best_epoch=1, rows=rows)
    lines = rendered(history_table(history)).splitlines()
    assert any(words(line) == ["1", "0.5000", "0.8000", "0.6000", "0.7500", "0.02", "3.2"]
               for line in lines)
    assert any(words(line)[:4] == ["2", "(partial)", "0.4000", "0.8500"] for line in lines)


def test_report_table_keeps_index_and_name_apart() -> None:
    rows = [SimpleNamespace(index=4, name="2", precision=0.5, recall=1.0, f1=2 / 3,
                            support=3),
            SimpleNamespace(index=-1, name="macro avg", precision=0.5, recall=1.0, f1=0.667,
                            support=3)]
    text = rendered(report_table(SimpleNamespace(report_rows=lambda: rows)))
    assert any(words(line) == ["4", "2", "0.500", "1.000", "0.667", "3"]
               for line in text.splitlines())
    assert any(words(line)[:2] == ["macro", "avg"] for line in text.splitlines())


def test_tuning_table_ranks_and_says_why_a_row_has_no_score() -> None:
    def row(rank: int, filters: int, status: str, reason: str = "") -> dict[str, object]:
        return {"rank_test_score": rank, "params": {"num_filters": filters},
                "mean_test_score": 0.9 if status == "ok" else None, "std_test_score": 0.01,
                "mean_test_loss": 0.3, "mean_fit_time": 2.0, "status": status,
                "reason": reason, "iter": 0, "n_resources": 100}

    rows = [row(1, 16, "ok"), row(2, 4, "invalid", "the layers cannot fit 8x8 images"),
            row(3, 8, "failed", "out of memory")]
    result = SimpleNamespace(searched=["num_filters"], strategy="grid",
                             ranked=lambda: rows)
    text = rendered(tuning_table(result), 140)
    assert "Tuning results (grid, best first)" in text and "num_filters" in text
    assert "invalid: the layers cannot fit 8x8 images" in text
    assert status_text(rows[2]) == "out of memory"
    assert any(words(line)[:3] == ["1", "16", "0.9000"] for line in text.splitlines())


def test_rendering_names_what_it_exports() -> None:
    assert set(rendering.__all__) <= set(dir(rendering))
