"""The model options of the hyper params: each builds the layers and parameter count worked
out by hand here, augmentation acts only while training, every option survives save and
reload, a grid over an option tunes and applies, and a backbone builds without a download
(never ``backbone_weights=imagenet`` in tests), freezes, unfreezes and refuses small images.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest

from convonet.core.architecture import architecture_problem
from convonet.core.model import ModelError, NetModel, build_model, load_model, save_model
from convonet.core.model_options import SparseSmoothedCrossentropy, options_text
from convonet.core.params import HyperParams, ParamsError
from convonet.core.training import NetTraining
from convonet.core.tuning import tune
from convonet.core.tuning.estimator import _build_flat_model
from tests.headless_helpers import child_env, jax_test_cache
from tests.test_tuning import hp, tiny_data

ROOT = Path(__file__).resolve().parents[1]

#: 8x8 grayscale images, 3 classes, 2 filters of 3x3, 8 hidden units.
SMALL: dict[str, Any] = {"num_filters": 2, "kernel_size": 3, "num_units": 8, "dropout": 0.0,
                         "init_rate": 0.05, "epochs": 1, "batch_size": 16, "seed": 3}


def config(**changes: Any) -> dict[str, Any]:
    return HyperParams({**SMALL, **changes}).first()


def types(model: keras.Model) -> list[str]:
    return [type(layer).__name__ for layer in model.layers]


class Tiny:
    """A dataset as NetTraining reads it."""

    def __init__(self, x: np.ndarray, y: np.ndarray) -> None:
        self.x, self.y = x, y
        self.image_shape = tuple(x.shape[1:])
        self.num_classes = int(y.max()) + 1


# ---- layers and parameter counts ----------------------------------------------------------
def test_the_seed_default_is_unchanged() -> None:
    hyper = HyperParams.load(ROOT / "app_input" / "mnist_hyper_params.json")
    model = NetModel(hyper).build((28, 28, 1), 10)
    assert model.count_params() == 818_026
    assert types(model) == ["Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D", "Flatten",
                            "Dense", "Dropout", "Dense"]
    assert isinstance(model.optimizer, keras.optimizers.SGD)
    assert model.optimizer.weight_decay is None
    assert model.loss == "sparse_categorical_crossentropy"
    assert options_text(hyper.first()) == ""


def test_the_small_seed_network_counted_by_hand() -> None:
    model = build_model(config(), (8, 8, 1), 3)
    # conv 3*3*1*2+2, pool 4x4, conv 3*3*2*2+2, pool 2x2 -> 8, dense 8*8+8, out 8*3+3
    assert model.count_params() == 20 + 38 + 72 + 27


def test_batch_norm_after_each_convolution() -> None:
    model = build_model(config(batch_norm="on"), (8, 8, 1), 3)
    assert types(model) == ["Conv2D", "BatchNormalization", "Activation", "MaxPooling2D",
                            "Conv2D", "BatchNormalization", "Activation", "MaxPooling2D",
                            "Flatten", "Dense", "Dropout", "Dense"]
    # convolutions without bias: 18 and 36; each BatchNorm 2 filters x 4 (2 trainable)
    assert model.count_params() == 18 + 8 + 36 + 8 + 72 + 27
    assert sum(int(np.prod(w.shape)) for w in model.non_trainable_weights) == 8


def test_conv_blocks_with_doubling_or_fixed_filters() -> None:
    doubled = build_model(config(conv_blocks=3, filter_growth="double"), (8, 8, 1), 3)
    assert [layer.filters for layer in doubled.layers
            if isinstance(layer, keras.layers.Conv2D)] == [2, 4, 8]
    # 3*3*1*2+2, 3*3*2*4+4, 3*3*4*8+8, then 1x1x8 -> dense 8*8+8, out 27
    assert doubled.count_params() == 20 + 76 + 296 + 72 + 27
    one = build_model(config(conv_blocks=1), (8, 8, 1), 3)
    assert types(one) == ["Conv2D", "MaxPooling2D", "Flatten", "Dense", "Dropout", "Dense"]
    assert one.count_params() == 20 + (4 * 4 * 2 * 8 + 8) + 27


def test_several_convolutions_per_block() -> None:
    pairs = build_model(config(convs_per_block=2), (8, 8, 1), 3)
    assert types(pairs) == ["Conv2D", "Conv2D", "MaxPooling2D", "Conv2D", "Conv2D",
                            "MaxPooling2D", "Flatten", "Dense", "Dropout", "Dense"]
    # 3*3*1*2+2, 3*3*2*2+2, pool 4x4, 3*3*2*2+2 twice, pool 2x2 -> 8, dense 8*8+8, out 27
    assert pairs.count_params() == 20 + 38 + 38 + 38 + 72 + 27
    normed = build_model(config(convs_per_block=2, batch_norm="on"), (8, 8, 1), 3)
    assert types(normed)[:8] == ["Conv2D", "BatchNormalization", "Activation", "Conv2D",
                                 "BatchNormalization", "Activation", "MaxPooling2D",
                                 "Conv2D"]
    assert types(normed).count("BatchNormalization") == 4
    # convolutions without bias: 18, 36, 36, 36; four BatchNorms of 2 filters x 4
    assert normed.count_params() == 18 + 36 + 36 + 36 + 4 * 8 + 72 + 27
    assert sum(int(np.prod(w.shape)) for w in normed.non_trainable_weights) == 4 * 4
    vgg = build_model(config(conv_blocks=3, convs_per_block=2, filter_growth="double"),
                      (8, 8, 1), 3)
    assert [layer.filters for layer in vgg.layers
            if isinstance(layer, keras.layers.Conv2D)] == [2, 2, 4, 4, 8, 8]
    # 3*3*1*2+2, 3*3*2*2+2 | 3*3*2*4+4, 3*3*4*4+4 | 3*3*4*8+8, 3*3*8*8+8, then 1x1x8
    assert vgg.count_params() == 20 + 38 + 76 + 148 + 296 + 584 + 72 + 27
    assert options_text(config(conv_blocks=3, convs_per_block=2, filter_growth="double")) \
        == "3 conv blocks of 2 convs (double filters)"
    assert options_text(config(convs_per_block=3)) == "2 conv blocks of 3 convs (fixed filters)"


@pytest.mark.parametrize(("value", "problem"), [
    (0, "0 is out of range"), (4, "4 is out of range"), ("two", "'two' is not a number"),
    ("1,4", "4 is out of range")])
def test_convs_per_block_is_checked(tmp_path: Path, value: Any, problem: str) -> None:
    path = tmp_path / "hyper.json"
    path.write_text(json.dumps({"convs_per_block": value}), encoding="utf-8")
    with pytest.raises(ParamsError) as info:
        HyperParams.load(path)
    assert info.value.field == "convs_per_block" and info.value.file == str(path)
    assert f"field 'convs_per_block': {problem}: expected a whole number >= 1 and <= 3" \
        in str(info.value)


def test_a_grid_over_convs_per_block() -> None:
    from convonet.tui.tuning_text import searched_text

    hyper = HyperParams({"convs_per_block": "1,2"})
    assert hyper.grid_size() == 2 and hyper.searched() == {"convs_per_block": [1, 2]}
    assert searched_text(hyper) == "Searching convs 1/2"
    assert hyper.apply({"convs_per_block": 2}).convs_per_block == (2, 1)
    assert HyperParams({"epochs": 3}).first()["convs_per_block"] == 1


def test_conv_blocks_need_room_for_their_poolings() -> None:
    problem = architecture_problem(config(conv_blocks=4), (8, 8, 1))
    assert problem is not None
    assert problem.message == ("conv_blocks 4 is too many for the 8x8 images: each block "
                               "halves them (2x2 pooling), so they need at least 16x16: use "
                               "a conv_blocks of at most 3 in the hyper params, or a larger "
                               "image_size in the data params")
    assert architecture_problem(config(conv_blocks=3), (8, 8, 1)) is None


def test_augmentation_layers_add_no_parameters() -> None:
    model = build_model(config(augment="contrast+flip,none"), (8, 8, 1), 3)
    assert types(model)[:2] == ["RandomFlip", "RandomContrast"]  # the table's order
    everything = build_model(config(augment="flip+shift+zoom+rotate+contrast"), (8, 8, 1), 3)
    assert types(everything)[:5] == ["RandomFlip", "RandomTranslation", "RandomZoom",
                                     "RandomRotation", "RandomContrast"]
    assert everything.count_params() == 157


def test_augment_words_are_checked() -> None:
    assert HyperParams({"augment": "shift+flip, none"}).augment == ("flip+shift", "none")
    with pytest.raises(ParamsError, match="'flap' is not one of none / flip / shift / zoom "
                       r"/ rotate / contrast \(did you mean 'flip'\?\)"):
        HyperParams({"augment": "flap+zoom"})
    with pytest.raises(ParamsError, match="none cannot be combined with others"):
        HyperParams({"augment": "none+flip"})


def test_optimizers_weight_decay_and_label_smoothing() -> None:
    adam = build_model(config(optimizer="adam", weight_decay=0.01), (8, 8, 1), 3)
    assert type(adam.optimizer) is keras.optimizers.Adam
    assert adam.optimizer.weight_decay == pytest.approx(0.01)
    adamw = build_model(config(optimizer="adamw"), (8, 8, 1), 3)
    assert type(adamw.optimizer) is keras.optimizers.AdamW
    sgd = build_model(config(weight_decay=0.001, momentum=0.8), (8, 8, 1), 3)
    assert sgd.optimizer.momentum == pytest.approx(0.8)
    assert sgd.optimizer.weight_decay == pytest.approx(0.001)
    smoothed = build_model(config(label_smoothing=0.1), (8, 8, 1), 3)
    assert isinstance(smoothed.loss, SparseSmoothedCrossentropy)
    y = np.array([0, 2, 1])
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8], [0.3, 0.4, 0.3]], dtype="float32")
    want = keras.losses.CategoricalCrossentropy(label_smoothing=0.1)(np.eye(3)[y], p)
    assert float(smoothed.loss(y, p)) == pytest.approx(float(want), rel=1e-5)
    assert float(smoothed.loss(y, p)) != pytest.approx(
        float(keras.losses.sparse_categorical_crossentropy(y, p).numpy().mean()), rel=1e-3)


def test_tuning_fits_get_the_optimizer_and_smoothing() -> None:
    flat = _build_flat_model(config(optimizer="adam", label_smoothing=0.2), (8, 8, 1), 3, 3,
                             build_model)
    assert type(flat.optimizer) is keras.optimizers.Adam
    assert isinstance(flat.loss, keras.losses.CategoricalCrossentropy)
    assert flat.loss.get_config()["label_smoothing"] == pytest.approx(0.2)


# ---- behaviour -----------------------------------------------------------------------------
def test_augmentation_acts_while_training_only() -> None:
    x, _ = tiny_data(per_class=2)
    model = build_model(config(augment="flip+shift+zoom+rotate+contrast"), (8, 8, 1), 3)
    first = model.predict(x, verbose=0)
    np.testing.assert_array_equal(first, model.predict(x, verbose=0))
    np.testing.assert_array_equal(first, np.asarray(model(x, training=False)))
    assert not np.allclose(first, np.asarray(model(x, training=True)))
    plain = build_model(config(), (8, 8, 1), 3)  # dropout 0: training mode is inference
    np.testing.assert_allclose(np.asarray(plain(x, training=True)),
                               plain.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def test_every_option_survives_save_and_reload(tmp_path: Path) -> None:
    x, y = tiny_data(per_class=8)
    cfg = config(batch_norm="on", conv_blocks=3, convs_per_block=2, filter_growth="double",
                 augment="flip+shift+zoom+rotate+contrast", optimizer="adamw",
                 weight_decay=0.01, label_smoothing=0.1, patience=0, epochs=1)
    model = NetModel(cfg).build((8, 8, 1), 3)
    NetTraining(model, cfg).train(Tiny(x, y))
    path = save_model(model, tmp_path / "options.keras")
    loaded = load_model(path)  # safe_mode on
    np.testing.assert_array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))
    assert types(loaded) == types(model)
    assert types(loaded).count("Conv2D") == 6
    assert isinstance(loaded.loss, SparseSmoothedCrossentropy)
    assert loaded.loss.label_smoothing == pytest.approx(0.1)
    assert type(loaded.optimizer) is keras.optimizers.AdamW
    assert loaded.optimizer.weight_decay == pytest.approx(0.01)


def test_params_with_every_option_round_trip_as_json(tmp_path: Path) -> None:
    hyper = HyperParams({"batch_norm": "on,off", "conv_blocks": "3,1",
                         "filter_growth": "double", "augment": "flip+zoom,none",
                         "optimizer": "adamw,sgd", "weight_decay": "0.01,0",
                         "label_smoothing": 0.1, "backbone": "none,efficientnetb0",
                         "backbone_weights": "none", "frozen_epochs": "2,0"})
    path = hyper.save(tmp_path / "hyper.json")
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["augment"] == "flip+zoom,none" and data["backbone"] == "none,efficientnetb0"
    assert HyperParams.load(path) == hyper
    assert options_text(hyper.first()) == ("batch norm · 3 conv blocks (double filters) · "
                                           "augment flip+zoom · adamw weight decay 0.01 · "
                                           "label smoothing 0.1")
    # a file written before the options existed gets the seed's values
    assert HyperParams({"epochs": 3}).first()["conv_blocks"] == 2


def test_a_grid_over_an_option_tunes_and_applies(tmp_path: Path) -> None:
    x, y = tiny_data()
    hyper = hp(optimizer="sgd,adam", batch_norm="on", label_smoothing=0.1, cv_folds=2)
    result = tune(x, y, hyper, results_dir=tmp_path)
    assert result.searched == ["optimizer"]
    assert "param_optimizer" in result.columns
    assert sorted(row["param_optimizer"] for row in result.rows) == ["adam", "sgd"]
    assert all(row["status"] == "ok" for row in result.rows), result.rows
    assert result.best_params is not None
    best = result.best_params["optimizer"]
    applied = hyper.apply(result.best_params)
    assert applied.optimizer[0] == best and sorted(applied.optimizer) == ["adam", "sgd"]
    table = (result.run.path / "results.csv").read_text(encoding="utf-8")  # type: ignore
    assert "param_optimizer" in table


# ---- backbones ------------------------------------------------------------------------------
#: MobileNetV3Small without its top (weights none): 939,120 weights, 576 pooled features.
MOBILENET_V3_SMALL = 939_120


def test_a_too_small_image_for_a_backbone_says_so() -> None:
    cfg = config(backbone="mobilenetv3small", backbone_weights="none")
    message = ("backbone mobilenetv3small is too large for the 28x28 images (it needs at "
               "least 32x32): use an image_size of at least 32,32 in the data params, or "
               "backbone none in the hyper params")
    problem = architecture_problem(cfg, (28, 28, 1))
    assert problem is not None and problem.message == message
    with pytest.raises(ModelError) as info:
        NetModel(cfg).build((28, 28, 1), 3)
    assert str(info.value) == message


def test_a_missing_weights_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.weights.h5"
    cfg = config(backbone="mobilenetv3small", backbone_weights=str(missing))
    with pytest.raises(ModelError, match=f"backbone_weights '{missing}': no such file"):
        NetModel(cfg).build((32, 32, 1), 3)


def test_a_backbone_builds_frozen_without_a_download_and_reloads(tmp_path: Path) -> None:
    cfg = config(backbone="mobilenetv3small", backbone_weights="none", frozen_epochs=1,
                 augment="flip")
    model = NetModel(cfg).build((32, 32, 1), 3)
    assert types(model) == ["InputLayer", "RandomFlip", "Rescaling", "Concatenate",
                            "Functional", "Dense", "Dropout", "Dense"]
    head = (576 * 8 + 8) + (8 * 3 + 3)
    assert model.count_params() == MOBILENET_V3_SMALL + head
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == head  # frozen
    assert options_text(cfg) == ("backbone mobilenetv3small (weights none, frozen 1 "
                                 "epochs) · augment flip")
    x = np.random.default_rng(0).random((4, 32, 32, 1), dtype=np.float32)
    loaded = load_model(save_model(model, tmp_path / "backbone.keras"))
    assert not loaded.get_layer("backbone_mobilenetv3small").trainable
    np.testing.assert_allclose(model.predict(x, verbose=0), loaded.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-6)


def nested_backbone_model() -> keras.Model:
    """A small stand-in for an application: a nested model named ``backbone``, frozen."""
    backbone = keras.Sequential([keras.Input((8, 8, 1)), keras.layers.Conv2D(2, 3),
                                 keras.layers.BatchNormalization(),
                                 keras.layers.GlobalAveragePooling2D()], name="backbone")
    backbone.trainable = False
    model = keras.Sequential([keras.Input((8, 8, 1)), backbone,
                              keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def test_the_frozen_phase_ends_inside_a_plain_fit() -> None:
    x, y = tiny_data(per_class=4)
    model = nested_backbone_model()
    backbone = model.get_layer("backbone")
    before = [w.numpy().copy() for w in backbone.weights]
    seen: list[tuple[int, bool, int]] = []

    class Watch(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            seen.append((epoch, backbone.trainable, len(self.model.trainable_weights)))

    # the training path adds the phase callback from the hyper params
    cfg = config(backbone="mobilenetv3small", frozen_epochs=1, epochs=3, decay=0.5,
                 patience=0)
    history = NetTraining(model, cfg).train(Tiny(x, y), [Watch()])
    assert seen == [(0, False, 2), (1, True, 6), (2, True, 6)]
    assert any(not np.allclose(a, b.numpy()) for a, b in zip(before, backbone.weights,
                                                            strict=True))
    # the per-epoch decay reaches the new optimizer: 0.05 / (1 + 0.5 * epoch)
    assert [row.learning_rate for row in history.rows] == pytest.approx(
        [0.05, 0.05 / 1.5, 0.05 / 2.0], rel=1e-6)
    assert type(model.optimizer) is keras.optimizers.SGD
    assert float(model.optimizer.momentum) == pytest.approx(0.9)


JAX_CHECK = r"""
import json, os, numpy as np, jax, keras
# compiling is most of this check's time: a cache that outlives the run (the test's)
jax.config.update("jax_compilation_cache_dir", os.environ["CONVONET_TEST_JAX_CACHE"])
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
from convonet.core.model import NetModel
from convonet.core.model_options import BackboneUnfreeze
from convonet.core.params import HyperParams
from convonet.core.training import NetTraining
from tests.test_model_options import Tiny, nested_backbone_model
from tests.test_tuning import tiny_data
x, y = tiny_data(per_class=4)
model = nested_backbone_model()
backbone = model.get_layer("backbone")
before = [np.array(w) for w in backbone.weights]
unfreeze = BackboneUnfreeze(1)
model.fit(x, y, epochs=2, batch_size=4, verbose=0, callbacks=[unfreeze])
changed = any(not np.allclose(a, np.array(b)) for a, b in zip(before, backbone.weights))
cnn = HyperParams({"num_filters": 2, "num_units": 8, "epochs": 1, "batch_size": 6,
                   "batch_norm": "on", "augment": "flip+shift+zoom+rotate+contrast",
                   "optimizer": "adamw", "label_smoothing": 0.1}).first()
small = NetModel(cnn).build((8, 8, 1), 3)
h = NetTraining(small, cnn).train(Tiny(x, y))
print(json.dumps({"backend": keras.backend.backend(), "unfrozen_at": unfreeze.unfrozen_at,
                  "trainable": backbone.trainable, "changed": changed,
                  "cnn_loss": h.rows[-1].loss}))
"""


def test_the_unfreeze_and_augmentation_work_on_jax(tmp_path: Path) -> None:
    env = {**child_env(tmp_path), "KERAS_BACKEND": "jax",
           "CONVONET_TEST_JAX_CACHE": str(jax_test_cache())}
    done = subprocess.run([sys.executable, "-c", JAX_CHECK], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["backend"] == "jax"
    assert out["unfrozen_at"] == 1 and out["trainable"] is True and out["changed"] is True
    assert np.isfinite(out["cnn_loss"])


async def test_the_form_edits_several_values_of_an_option(make_app: Any) -> None:
    from conftest import wait_for
    from textual.widgets import Input, Static

    from convonet.tui.screens.params import ParamsScreen
    from convonet.tui.widgets.params_form import FieldRow, ParamsForm

    app = make_app()
    async with app.run_test(size=(100, 34)) as pilot:
        await pilot.press("E")
        await wait_for(pilot, lambda: isinstance(app.screen, ParamsForm), "the form")
        form = app.screen
        for name, text in (("optimizer", "sgd,adam"), ("augment", "shift+flip,none")):
            row = form.query_one(f"#row-{name}", FieldRow)
            box = row.query_one(Input)  # a text box, not a one-value list
            box.focus()
            await pilot.press("ctrl+u", *text)
            assert row.value == text and not row.has_class("-invalid")
        hint = str(form.query_one("#row-augment", FieldRow).query_one(".field-hint", Static)
                   .render())
        assert hint.startswith("random changes while training only")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, ParamsScreen), "the form to close")
        assert app.session.hyper_params.optimizer == ("sgd", "adam")
        assert app.session.hyper_params.augment == ("flip+shift", "none")


def test_options_reach_the_runs_diff_and_the_model_screen(tmp_path: Path) -> None:
    from convonet.core.run_compare import diff_runs
    from convonet.tui.model_text import config_text, stale_note

    seed, tuned = tmp_path / "seed", tmp_path / "tuned"
    HyperParams().save_copy(seed / "hyper_params.json")
    HyperParams({"augment": "flip+shift", "optimizer": "adam", "convs_per_block": 2}
                ).save_copy(tuned / "hyper_params.json")
    changed = {d.field: (d.a, d.b) for d in diff_runs(seed, tuned) if d.differs}
    assert changed == {"hyper.augment": ("none", "flip+shift"),
                       "hyper.optimizer": ("sgd", "adam"), "hyper.convs_per_block": (1, 2)}
    cfg = HyperParams({"batch_norm": "on", "label_smoothing": 0.1}).first()
    assert config_text(cfg) == ("filters 32 · kernel 3 · units 512 · dropout 0.5 · "
                                "batch norm · label smoothing 0.1")
    assert "(batch_norm, label_smoothing)" in stale_note(cfg, HyperParams())
    assert "(convs_per_block)" in stale_note(HyperParams({"convs_per_block": 2}).first(),
                                             HyperParams())
