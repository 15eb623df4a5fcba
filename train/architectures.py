"""The classifiers: the published shallow CNN baseline, a compact MobileNetV2 and
EfficientNet-Lite0 with ImageNet weights (read offline, see :mod:`.imagenet.efficientnet_lite`)."""

from __future__ import annotations

import keras
from keras import layers

SHALLOW_SIZE = 64


def build_shallow(size: int = SHALLOW_SIZE, channels: int = 1, batch_size: int | None = None) -> keras.Model:
    """Two 3x3 convolutions (32, 64) with 2x2 max-pooling, dropout 0.1, dense 128, sigmoid."""
    inputs = keras.Input(shape=(size, size, channels), batch_size=batch_size, name="film")
    x = layers.Conv2D(32, 3, activation="relu", name="conv1")(inputs)
    x = layers.MaxPooling2D(2, name="pool1")(x)
    x = layers.Conv2D(64, 3, activation="relu", name="conv2")(x)
    x = layers.MaxPooling2D(2, name="pool2")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dropout(0.1, name="dropout")(x)
    x = layers.Dense(128, activation="relu", name="dense")(x)
    outputs = layers.Dense(1, activation="sigmoid", name="probability")(x)
    return keras.Model(inputs, outputs, name="shallow_cnn")


def build_mobilenet(size: int = 224, channels: int = 1, alpha: float = 0.35, *, weights: str | None = None,
                    batch_size: int | None = None, bn_momentum: float = 0.9) -> keras.Model:
    """MobileNetV2 features, global average pooling and a sigmoid unit.

    ``weights``: None (from scratch), "imagenet" (needs internet and 3 channels) or a
    path to weights of this same model. Batch-norm momentum is lowered from Keras'
    0.999 because, trained from scratch, the moving statistics otherwise lag so far
    behind that inference output sits at a constant for several epochs.
    """
    imagenet = weights == "imagenet"
    if imagenet and channels != 3:
        raise ValueError("ImageNet weights need 3 channels (--channels 3)")
    inputs = keras.Input(shape=(size, size, channels), batch_size=batch_size, name="film")
    backbone = keras.applications.MobileNetV2(input_shape=(size, size, channels), alpha=alpha,
                                              include_top=False, weights="imagenet" if imagenet else None)
    if not imagenet:
        for layer in backbone.layers:
            if isinstance(layer, layers.BatchNormalization):
                layer.momentum = bn_momentum
    return _with_head(inputs, backbone, name="mobilenet_v2", weights=weights)


def build_efficientnet_lite0(size: int = 224, channels: int = 1, *, weights: str | None = "imagenet",
                             batch_size: int | None = None, freeze_blocks: int = 10) -> keras.Model:
    """EfficientNet-Lite0 features, global average pooling, dropout 0.2 and a sigmoid unit.

    ``weights``: "imagenet" (offline, from the pinned weights package), None, or a path
    to weights of this same model. ``freeze_blocks``: the stem and blocks 0..N keep
    their ImageNet weights and statistics (-1 trains everything).
    """
    from .imagenet.efficientnet_lite import backbone, freeze_through, load_imagenet

    inputs = keras.Input(shape=(size, size, channels), batch_size=batch_size, name="film")
    features_model = backbone(size, channels)
    if weights == "imagenet":
        load_imagenet(features_model)
        freeze_through(features_model, freeze_blocks)
    return _with_head(inputs, features_model, name="efficientnet_lite0_classifier", weights=weights)


def _with_head(inputs, backbone, *, name: str, weights: str | None) -> keras.Model:
    """A nested backbone, global average pooling, dropout 0.2 and a sigmoid unit named
    "probability" (the shape convert's class-activation rebuild expects); ``weights`` other
    than None/"none"/"imagenet" is a weights file of this same model."""
    x = layers.GlobalAveragePooling2D(name="pool")(backbone(inputs))
    x = layers.Dropout(0.2, name="dropout")(x)
    outputs = layers.Dense(1, activation="sigmoid", name="probability")(x)
    model = keras.Model(inputs, outputs, name=name)
    if weights not in (None, "none", "imagenet"):
        model.load_weights(weights)
    return model


def build(arch: str, size: int, channels: int, *, alpha: float = 0.35, weights: str | None = None,
          batch_size: int | None = None, freeze_blocks: int = 10) -> keras.Model:
    if arch == "shallow":
        return build_shallow(size, channels, batch_size)
    if arch == "mobilenet":
        return build_mobilenet(size, channels, alpha, weights=weights, batch_size=batch_size)
    if arch == "efficientnet_lite0":
        return build_efficientnet_lite0(size, channels, weights=weights, batch_size=batch_size,
                                        freeze_blocks=freeze_blocks)
    raise ValueError(f"unknown architecture {arch!r}")
