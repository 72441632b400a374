"""The fused batch-norm training copy computes what Keras's layer computes, and hands its weights back."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import layers

from pipeline.core.cpu import cpu_flags
from pipeline.modeling.fused import FusedBatchNormalization, copy_weights, fused_copy, with_fused_batch_norm
from pipeline.modeling.models import build_model
from pipeline.modeling.precision import dtype_policy, resolve_precision
from tests.helpers.configs import conf
from tests.helpers.marks import needs_bfloat16_kernels

CNN3 = {"name": "cnn3_bn", "filters": [8, 8, 8], "conv_dropout": 0.0, "dense_units": [16], "dense_dropout": 0.0}


@pytest.mark.parametrize("shape", [(16, 5, 5, 3), (16, 7)])
@pytest.mark.parametrize("training", [True, False])
def test_fused_layer_matches_keras_batch_norm(shape, training):
    x = np.random.default_rng(0).normal(2.0, 3.0, shape).astype(np.float32)
    plain, fused = layers.BatchNormalization(momentum=0.9), FusedBatchNormalization(momentum=0.9)
    plain.build(shape), fused.build(shape)
    rng = np.random.default_rng(1)
    weights = [
        rng.normal(1, 0.2, shape[-1]),
        rng.normal(0, 0.2, shape[-1]),
        rng.normal(0, 1, shape[-1]),
        rng.uniform(0.5, 2, shape[-1]),
    ]
    plain.set_weights(weights), fused.set_weights(weights)
    np.testing.assert_allclose(fused(x, training=training), plain(x, training=training), atol=1e-4)
    # Moving statistics move the same way (the fused kernel's variance is Bessel-corrected: n / (n - 1)).
    n = int(np.prod(shape[:-1]))
    np.testing.assert_allclose(fused.moving_mean, plain.moving_mean, atol=1e-5)
    expected_var = np.asarray(plain.moving_variance)
    if training:
        expected_var = weights[3] * 0.9 + x.reshape(n, -1).var(axis=0) * n / (n - 1) * 0.1
    np.testing.assert_allclose(fused.moving_variance, expected_var, rtol=1e-4)


@needs_bfloat16_kernels
def test_training_copy_trains_and_hands_back_a_plain_keras_model(tmp_path):
    x = np.random.default_rng(0).uniform(0, 255, (64, 28, 28)).astype(np.float32)
    y = np.arange(64) % 3
    with dtype_policy("mixed_bfloat16"):
        fused = with_fused_batch_norm(build_model(CNN3, {"name": "none"}, 3))
    assert sum(isinstance(layer, FusedBatchNormalization) for layer in fused.layers) == 7
    fused.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    fused.fit(x, y, epochs=1, batch_size=16, verbose=0)
    plain = copy_weights(fused, build_model(CNN3, {"name": "none"}, 3))
    assert not any(isinstance(layer, FusedBatchNormalization) for layer in plain.layers)
    assert plain.layers[-1].compute_dtype == "float32" and plain.layers[2].compute_dtype == "float32"
    plain.save(tmp_path / "m.keras")
    reloaded = keras.models.load_model(tmp_path / "m.keras")
    # bfloat16 inference vs float32 inference on the same weights: close, not equal. (Called, not `predict`:
    # tracing a prediction graph for each model would double this test's time.)
    np.testing.assert_allclose(reloaded(x, training=False), fused(x, training=False), atol=0.05)
    with pytest.raises(ValueError, match="the models differ"):
        copy_weights(fused, build_model(CNN3, {"name": "none"}, 4))


def test_precision_auto_follows_the_cpus_bfloat16_support():
    assert resolve_precision("auto", frozenset({"avx2", "avx512_bf16"})) == "mixed_bfloat16"
    assert resolve_precision("auto", frozenset({"avx2", "amx_bf16"})) == "mixed_bfloat16"
    assert resolve_precision("auto", frozenset({"avx2", "avx512f"})) == "float32"
    assert resolve_precision("float32", frozenset({"avx512_bf16"})) == "float32"


def test_dtype_policy_scope_restores_the_previous_policy():
    before = keras.config.dtype_policy().name
    with dtype_policy("mixed_bfloat16"):
        assert keras.config.dtype_policy().name == "mixed_bfloat16"
    assert keras.config.dtype_policy().name == before


def test_fused_copy_predicts_what_the_plain_model_predicts():
    """Evaluation predicts with the fused copy (evaluate.fused_batch_norm); it must score the served model."""
    rng = np.random.default_rng(2)
    x = rng.uniform(0, 255, (64, 28, 28)).astype(np.float32)
    plain = build_model(CNN3, conf("augment", "standard"), 5)
    for layer in plain.layers:
        if isinstance(layer, layers.BatchNormalization):  # statistics as far from the initial ones as training's
            n = layer.gamma.shape[0]
            layer.set_weights(
                [rng.normal(1, 0.3, n), rng.normal(0, 0.3, n), rng.normal(0, 2, n), rng.uniform(0.2, 5, n)]
            )
    fused = fused_copy(plain)
    expected = plain.predict(x, verbose=0)
    assert expected.std() > 0.01  # not a flat output that any model would match
    np.testing.assert_allclose(fused.predict(x, verbose=0), expected, atol=1e-5)


def test_an_isa_cap_below_bfloat16_takes_the_bfloat16_flags_away(tmp_path):
    """`ONEDNN_MAX_CPU_ISA=AVX2` on a CPU with AVX512_BF16 stands in for an AVX2-only CPU: `auto` is float32."""
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_bf16\n")
    assert cpu_flags(cpuinfo, {}) == {"fpu", "avx2", "avx512f", "avx512_bf16"}
    assert cpu_flags(cpuinfo, {"ONEDNN_MAX_CPU_ISA": "avx2"}) == {"fpu", "avx2", "avx512f"}
    assert cpu_flags(cpuinfo, {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE"}) == {"fpu", "avx2", "avx512f"}
    assert "avx512_bf16" in cpu_flags(cpuinfo, {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_AMX"})
    assert resolve_precision("auto", cpu_flags(cpuinfo, {"ONEDNN_MAX_CPU_ISA": "AVX2"})) == "float32"
    assert cpu_flags(tmp_path / "absent", {}) == frozenset()
