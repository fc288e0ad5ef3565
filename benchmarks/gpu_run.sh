#!/usr/bin/env bash
# The GPU benchmark in one command, on a machine with jax (CUDA) but no TensorFlow, no
# network and no dataset: installs the carried wheels (.whl/, see docs/benchmarks.md) into
# a temporary folder and runs benchmarks/bench_gpu.py on the carried .npz with the jax
# backend. Any arguments go to bench_gpu.py (--rounds, --epochs, --batch-sizes, --limit,
# --skip-tune ...). NPZ=path moves the data file.
set -euo pipefail
cd "$(dirname "$0")/.."
npz="${NPZ:-datasets/fashion-mnist.npz}"
if [ ! -f "$npz" ]; then
    echo "gpu_run.sh: $npz is missing; make it where Fashion-MNIST is installed with" \
         "'python benchmarks/bench_gpu.py --write-npz $npz' and carry it here" >&2
    exit 2
fi
site="$(mktemp -d "${TMPDIR:-/tmp}/convonet-site.XXXXXX")"
trap 'rm -rf "$site"' EXIT
shopt -s nullglob
wheels=(.whl/*.whl)
if [ ${#wheels[@]} -gt 0 ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --target "$site" "${wheels[@]}"
fi
PYTHONPATH="$site:$PWD/src${PYTHONPATH:+:$PYTHONPATH}" KERAS_BACKEND=jax \
    python3 benchmarks/bench_gpu.py --npz "$npz" "$@"
