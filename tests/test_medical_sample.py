"""The small-medical-set sample (``app_input/medical-*.json``): it loads, reads the lung
sample's folders at 128x128 RGB, and builds the network its README line describes (batch
norm, four blocks of doubling filters, augmentation, Adam at a lower rate than the lung
sample's SGD 0.02), parameters counted by hand."""

from __future__ import annotations

import json
from pathlib import Path

import keras

from convonet.core.model import NetModel
from convonet.core.params import HyperParams

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "app_input"


def test_the_medical_data_params_read_the_lung_folders_as_rgb() -> None:
    medical = json.loads((SAMPLES / "medical-data-params.json").read_text())
    lung = json.loads((SAMPLES / "lung-data-params-1.json").read_text())
    assert medical == lung  # same chest-CT folders, 128x128, rgb


def test_the_medical_hyper_params_load_and_build_the_expected_model() -> None:
    hyper = HyperParams.load(SAMPLES / "medical-hyper-params.json")
    lung = HyperParams.load(SAMPLES / "lung-hyper-params-1.json")
    cfg = hyper.first()
    assert cfg["init_rate"] < lung.first()["init_rate"]
    assert (cfg["batch_norm"], cfg["augment"], cfg["optimizer"]) == (
        "on", "flip+shift+zoom", "adam")
    model = NetModel(hyper).build((128, 128, 3), 4)
    conv = [(9 * 3 * 16) + 4 * 16, (9 * 16 * 32) + 4 * 32, (9 * 32 * 64) + 4 * 64,
            (9 * 64 * 128) + 4 * 128]  # bias-free Conv2D + BatchNormalization
    head = (8 * 8 * 128 * 128 + 128) + (128 * 4 + 4)
    assert model.count_params() == sum(conv) + head == 1_147_380
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds.count("BatchNormalization") == 4 and kinds.count("MaxPooling2D") == 4
    assert {"RandomFlip", "RandomTranslation", "RandomZoom"} <= set(kinds)
    assert isinstance(model.optimizer, keras.optimizers.Adam)
