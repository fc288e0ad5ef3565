"""The tuned Fashion-MNIST sample in app_input/: its params stay valid, its model builds
with the parameter count worked out here, and it trains (augmentation included) through
the project's own training path on a tiny set, so the sample cannot rot unnoticed."""

from __future__ import annotations

import json
from pathlib import Path

import keras

from convonet.core.model import NetModel
from convonet.core.model_options import options_text
from convonet.core.params import DataParams, HyperParams
from convonet.tasks import Status, execute
from convonet.tasks.train import TrainSpec
from tests.conftest import make_tiny_set

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "app_input" / "fashion_mnist_hyper_params.json"
DATA = ROOT / "app_input" / "fashion_mnist_data_params.json"


def test_fashion_sample_params_load_with_its_model_options() -> None:
    hp = HyperParams.load(SAMPLE)
    first = hp.first()
    assert (first["batch_norm"], first["conv_blocks"], first["filter_growth"]) == \
        ("on", 3, "double")
    assert (first["optimizer"], first["augment"], first["init_rate"]) == \
        ("adam", "flip", 0.002)
    assert first["epochs"] <= 15 and first["decay"] > 0
    # A small grid to tune: two learning rates, with and without the flip.
    assert hp.searched() == {"init_rate": [0.002, 0.001], "augment": ["flip", "none"]}
    assert hp.grid_size() == 4


def test_fashion_sample_data_params_point_at_the_fashion_mnist_tree() -> None:
    # The folders are what benchmarks/fashion_mnist.py writes; only the content is checked.
    data = json.loads(DATA.read_text())
    dp = DataParams(data)
    assert (tuple(dp.image_size), dp.color_mode, dp.channels) == ((28, 28), "grayscale", 1)
    assert data["train_dir"] == "../datasets/fashion-mnist/train"
    assert data["test_dir"] == "../datasets/fashion-mnist/test"


def test_fashion_sample_builds_its_391082_parameter_model() -> None:
    model = NetModel(HyperParams.load(SAMPLE)).build((28, 28, 1), 10)
    # Per block: Conv2D without bias (3*3*in*out), BatchNorm (4*out, half not trained):
    # 1->32: 288+128, 32->64: 18,432+256, 64->128: 73,728+512; 28->14->7->3 pixels, so
    # Dense(256) on 3*3*128 = 1,152: 295,168; Dense(10): 2,570.
    assert model.count_params() == 391_082
    trainable = sum(int(keras.ops.size(w)) for w in model.trainable_weights)
    assert trainable == 391_082 - 2 * (32 + 64 + 128)
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == ["RandomFlip",
                     *["Conv2D", "BatchNormalization", "Activation", "MaxPooling2D"] * 3,
                     "Flatten", "Dense", "Dropout", "Dense"]
    assert options_text(HyperParams.load(SAMPLE).first()) == (
        "batch norm · 3 conv blocks (double filters) · augment flip · adam")


def test_fashion_sample_trains_through_the_training_task(tmp_path: Path) -> None:
    data = make_tiny_set(classes=10, per_class=4, size=28)
    hp = HyperParams.load(SAMPLE).edit(epochs=1, batch_size=16)
    model = NetModel(hp).build(data.image_shape, data.num_classes, data.class_names)
    outcome = execute(TrainSpec(model=model, hyper_params=hp, dataset=data,
                                validation=True, results_dir=tmp_path))
    assert outcome.status is Status.FINISHED
    row = outcome.result
    assert row is not None and row.val_accuracy is not None
    assert 0.0 <= row.val_accuracy <= 1.0
