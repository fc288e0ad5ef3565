"""Run every benchmark that fits this machine and print the table of targets.

    python benchmarks/run_all.py            # all of them, about 20 minutes on 2 cores
    python benchmarks/run_all.py --table    # only print the table from the last results

Each script writes its JSON into benchmarks/results/; this prints one row per target with
the measured figure, and writes the same table to docs/benchmarks-latest.md (date and
machine included). Run from the repository root (datasets are written under ./datasets).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
DOCS = HERE.parent / "docs"

SCRIPTS = [
    ("bench_loading.py", ["--repeats", "3", "--large", "3000"]),
    # 20,000 images: on the full set an epoch here takes either ~12 s or ~21 s at random
    # (see bench_training.py), which swamps a 5% difference; 9 short pairs do not.
    ("bench_training.py", ["--limit", "20000", "--rounds", "9"]),
    ("bench_ui.py", ["--presses", "30"]),
    ("bench_tuning.py", []),
    ("bench_memory.py", []),
    ("bench_accuracy.py", ["--epochs", "15"]),
]


def load(name: str) -> dict | None:
    path = RESULTS / name
    return json.loads(path.read_text()) if path.exists() else None


def rows() -> list[tuple[str, str, str, str]]:
    out: list[tuple[str, str, str, str]] = []
    loading = load("loading.json")
    if loading:
        png, large = loading["results"][0], loading["results"][1]
        m = png["medians_s"]
        out.append(("load 60k PNG cold vs Pillow loop", ">= 1.0x",
                    f"{png['ratios']['pillow_loop / ours_cold']:.2f}x "
                    f"({m['ours_cold']:.1f} s vs {m['pillow_loop']:.1f} s)", loading["date"]))
        out.append(("load 60k PNG, warm cache", "< 0.5 s", f"{m['ours_warm']:.2f} s",
                    loading["date"]))
        lm = large["medians_s"]
        out.append((f"load {large['set']} cold vs Pillow loop", ">= 1.6x",
                    f"{large['ratios']['pillow_loop / ours_cold']:.2f}x "
                    f"({lm['ours_cold']:.1f} s vs {lm['pillow_loop']:.1f} s)", loading["date"]))
    training = load("training.json")
    for batch, res in (training or {}).get("batch_sizes", {}).items():
        med, r = res["median_s_per_epoch"], res["real_over_plain"]
        out.append((f"training overhead, batch {batch} (real path / plain fit)", "<= 1.05",
                    f"{r['median']:.3f} median of interleaved pairs (spread "
                    f"{r['min']:.2f}-{r['max']:.2f}; {med['real']:.1f} vs {med['plain']:.1f} "
                    f"s/epoch, {training['images']} images; test accuracy "
                    f"{res['test_accuracy']['real']:.2%} vs {res['test_accuracy']['plain']:.2%})",
                    training["date"]))
    ui = load("ui.json")
    if ui:
        out.append(("key press -> screen change while training (median)", "< 100 ms",
                    f"{ui['training_median_ms']:.0f} ms (idle {ui['idle_median_ms']:.0f} ms, "
                    f"p90 {ui['training_p90_ms']:.0f} ms)", ui["date"]))
    tuning = load("tuning.json")
    if tuning:
        g, h = tuning["results"]["grid"], tuning["results"]["halving"]
        out.append(("halving time / grid time", "<= 0.40",
                    f"{tuning['halving_over_grid_time']:.2f} ({h['wall_s']:.0f} s vs "
                    f"{g['wall_s']:.0f} s; {h['fits']} vs {g['fits']} fits)", tuning["date"]))
        out.append(("halving best vs grid best (chosen by CV), test accuracy at the final "
                    "epoch of retraining", "within 0.5 points",
                    f"{tuning['test_accuracy_gap_points']:+.2f} points "
                    f"({h['test_accuracy_after_retraining']:.4f} vs "
                    f"{g['test_accuracy_after_retraining']:.4f})", tuning["date"]))
        mem = g["rss_mb_after_each_fit"]
        half = len(mem) // 2
        slope = (mem[-1] - mem[half]) / max(1, len(mem) - 1 - half)
        hmem = h["rss_mb_after_each_fit"]
        out.append(("RSS across the grid's fits", "flat",
                    f"{mem[0]:.0f} -> {mem[-1]:.0f} MB over {len(mem)} fits (max "
                    f"{max(mem):.0f}; {slope:+.2f} MB/fit over the second half); halving's "
                    f"{len(hmem)} fits after it {min(hmem):.0f}-{max(hmem):.0f} MB",
                    tuning["date"]))
    memory = load("memory.json")
    if memory:
        first, last = memory["passes"][0], memory["passes"][-1]
        out.append(("RSS, the same 32-combination search twice in one process", "flat",
                    f"{memory['growth_mb_per_fit']:+.2f} MB/fit (pass ends "
                    f"{first['rss_last_mb']:.0f} -> {last['rss_last_mb']:.0f} MB); Python "
                    f"objects {first['python_objects']} -> {last['python_objects']}; "
                    "traced gradients held "
                    f"{last['traced_gradients_held']}", memory["date"]))
    accuracy = load("accuracy.json")
    if accuracy and "test" not in accuracy:  # written before the epoch was chosen honestly
        out.append(("Fashion-MNIST test accuracy, sample params, 15 epochs, epoch chosen on "
                    "validation", ">= 92.0%", "not measured: accuracy.json predates the "
                    "validation choice (its best epoch was picked on the test set); run "
                    "bench_accuracy.py", accuracy["date"]))
    elif accuracy:
        test = accuracy["test"]
        out.append(("Fashion-MNIST test accuracy, sample params, 15 epochs, epoch chosen on "
                    "validation", ">= 92.0%",
                    f"{test['chosen_test_accuracy'] * 100:.2f}% at epoch "
                    f"{test['chosen_epoch']} (final epoch {test['final_epoch']}: "
                    f"{test['final_test_accuracy'] * 100:.2f}%; decay "
                    f"{accuracy['hyper_params']['decay']})", accuracy["date"]))
        out.append(("peak RSS, loading + training all of Fashion-MNIST", "(reported)",
                    f"{accuracy['peak_rss_mb']:.0f} MB", accuracy["date"]))
    gpu = load("gpu.json")
    if gpu:
        for batch, res in gpu["batch_sizes"].items():
            med, acc = res["median_s_per_epoch"], res["test_accuracy"]
            out.append((f"GPU ({gpu['device_kind']}, jax), batch {batch}: real path vs plain "
                        "fit vs stateless scan", "measure",
                        f"{med['real']:.3f} / {med['plain']:.3f} / {med['scan']:.3f} s/epoch, "
                        f"real/plain {res['real_over_plain']['median']:.2f}; test accuracy "
                        f"{acc['real']:.2%} vs {acc['plain']:.2%}", gpu["date"]))
    else:
        out.append(("GPU (jax backend): real path vs plain fit vs stateless scan", "measure",
                    "not run on this machine (no GPU): benchmarks/gpu_run.sh", "-"))
    return out


def table() -> str:
    machine = f"{os.cpu_count()} cores, {platform.platform()}, Python {platform.python_version()}"
    lines = [f"Machine: {machine}", "", "| what | target | measured | date |",
             "|---|---|---|---|"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows()]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description="Run every benchmark")
    parser.add_argument("--table", action="store_true", help="only print the last results")
    args = parser.parse_args()
    if not args.table:
        for script, extra in SCRIPTS:
            t0 = time.perf_counter()
            print(f"== {script}", flush=True)
            subprocess.run([sys.executable, str(HERE / script), *extra], check=True)
            print(f"== {script}: {time.perf_counter() - t0:.0f} s", flush=True)
    text = table()
    print(text)
    DOCS.mkdir(exist_ok=True)
    (DOCS / "benchmarks-latest.md").write_text(
        "# Latest benchmark results\n\nWritten by `python benchmarks/run_all.py`.\n\n" + text)


if __name__ == "__main__":
    main()
