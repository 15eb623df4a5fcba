"""Keras model to TFLite: float32, full-integer int8 and float16, batch 1 and static shapes."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterable
from typing import Callable

import numpy as np


def inference_model(model, arch: str):
    """Rebuild ``model`` on a batch-1 input, with the same weights.

    ``TFLiteConverter.from_keras_model`` leaves the batch dimension dynamic for a
    model built on ``Input(shape=...)``, which the Edge TPU compiler refuses.

    For a model with a backbone (MobileNet, EfficientNet-Lite0), the pooled-features-then-dense
    head is rewritten as a 1x1 convolution (the dense weights) followed by global average pooling: both are
    linear, so they commute and the probability is unchanged, while the
    convolution's output *is* the class activation map, exposed as a second
    output for the heatmap.
    """
    import keras
    from keras import layers

    shape = tuple(model.input_shape[1:])
    inputs = keras.Input(shape=shape, batch_size=1, name="film")
    backbone = next((layer for layer in model.layers if isinstance(layer, keras.Model)), None)
    if backbone is not None:
        dense = model.get_layer("probability")
        features = backbone(inputs, training=False)
        kernel, bias = dense.get_weights()
        cam_layer = layers.Conv2D(1, 1, name="cam")
        cam = cam_layer(features)
        cam_layer.set_weights([kernel.reshape(1, 1, -1, 1), bias])
        logit = layers.GlobalAveragePooling2D(name="pool")(cam)
        probability = layers.Activation("sigmoid", name="probability")(logit)
        return keras.Model(inputs, [probability, cam], name=model.name + "_b1")
    x = inputs
    for layer in model.layers[1:]:
        x = layer(x) if not isinstance(layer, layers.Dropout) else x
    return keras.Model(inputs, x, name=model.name + "_b1")


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

