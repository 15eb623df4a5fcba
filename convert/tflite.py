"""Keras model to TFLite: float32, full-integer int8 and float16, batch 1 and static shapes."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterable
from typing import Callable

import numpy as np


def inference_model(model):
    """Rebuild ``model`` on a batch-1 input, with the same weights, plus the scope check's features.

    ``TFLiteConverter.from_keras_model`` leaves the batch dimension dynamic for a
    model built on ``Input(shape=...)``, which the Edge TPU compiler refuses.

    For a model with a nested backbone (MobileNet, EfficientNet-Lite), the
    pooled-features-then-dense head is rewritten as a 1x1 convolution (the dense
    weights) followed by global average pooling: both are linear, so they commute
    and the probability is unchanged, while the convolution's output *is* the
    class activation map, exposed as a second output for the heatmap.

    Extra outputs feed the out-of-scope check (:mod:`pneumo_edge.edge.scope`):
    see :func:`early_tap`. Outputs are told apart on the device by shape, so the
    feature widths must differ.
    """
    import keras
    from keras import layers

    shape = tuple(model.input_shape[1:])
    inputs = keras.Input(shape=shape, batch_size=1, name="film")
    backbone = next((layer for layer in model.layers if isinstance(layer, keras.Model)), None)
    if backbone is not None:
        dense = model.get_layer("probability")
        early = early_tap(backbone)
        features, early_map = keras.Model(backbone.inputs, [backbone.output, early.output])(inputs, training=False)
        kernel, bias = dense.get_weights()
        cam_layer = layers.Conv2D(1, 1, name="cam")
        cam = cam_layer(features)
        cam_layer.set_weights([kernel.reshape(1, 1, -1, 1), bias])
        logit = layers.GlobalAveragePooling2D(name="pool")(cam)
        probability = layers.Activation("sigmoid", name="probability")(logit)
        final = layers.GlobalAveragePooling2D(name="features_final")(features)
        early_pooled = layers.GlobalAveragePooling2D(name="features_early")(early_map)
        return keras.Model(inputs, [probability, cam, final, early_pooled], name=model.name + "_b1")
    x, extra = inputs, []
    for layer in model.layers[1:]:
        x = layer(x) if not isinstance(layer, layers.Dropout) else x
        if layer.name == "dense":  # the shallow CNN's dense-128 features
            extra.append(x)
    return keras.Model(inputs, [x, *extra], name=model.name + "_b1")


def early_tap(backbone):
    """The backbone's early tap: its last layer at stride 8 (28 x 28 for a 224 input).

    Chosen by structure, not by name, so any nested backbone gets one; early
    features see texture and contrast that the final, pooled ones average away.
    """
    side = backbone.input_shape[1] // 8
    taps = [layer for layer in backbone.layers[1:]
            if len(layer.output.shape) == 4 and layer.output.shape[1] == side and layer.output.shape[2] == side]
    if not taps:
        raise ValueError(f"{backbone.name} has no layer at stride 8 ({side} x {side})")
    return taps[-1]


def feature_widths(model) -> dict[str, int]:
    """The scope features an :func:`inference_model` outputs: block name -> width."""
    names = {"final": ("features_final", "dense"), "early": ("features_early",)}
    layers = {layer.name: layer for layer in model.layers}
    widths = {block: int(layers[name].output.shape[-1]) for block, candidates in names.items()
              for name in candidates if name in layers}
    if len(set(widths.values())) < len(widths):
        raise ValueError(f"scope feature outputs must differ in width to be told apart: {widths}")
    return widths


def convert(model, variant: str, representative: Callable[[], Iterable[list[np.ndarray]]] | None = None
            ) -> bytes:
    """``variant``: float32, float16, or int8 (int8 weights and activations, uint8 in and out)."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if variant == "float16":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.target_spec.supported_types = [tf.float16]
    elif variant == "int8":
        if representative is None:
            raise ValueError("int8 conversion needs calibration films")
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.uint8
        converter.inference_output_type = tf.uint8
    elif variant != "float32":
        raise ValueError(f"unknown variant {variant!r}")
    with contextlib.redirect_stdout(io.StringIO()):  # Keras' export prints every captured tensor
        return converter.convert()

