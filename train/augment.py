"""Training augmentation for radiographs, on uint8-range grey batches (B, H, W, 1).

``light``: the geometry and exposure a film on a different day varies by (small
rotations, shifts, zoom, brightness, contrast); never flips (the heart is on the
left). ``acquisition`` adds what differs between hospitals and scanners: gamma,
blur, sensor noise and JPEG re-compression, and zoom that crops or shows borders.
"""

from __future__ import annotations

AUGMENTATIONS = ("none", "light", "acquisition")


def geometry(seed: int, zoom: float):
    import keras
    from keras import layers

    return keras.Sequential([
        layers.RandomRotation(7 / 360, fill_mode="constant", seed=seed),
        layers.RandomTranslation(0.06, 0.06, fill_mode="constant", seed=seed + 1),
        layers.RandomZoom((-zoom, zoom), fill_mode="constant", seed=seed + 2),
        layers.RandomBrightness(0.1, value_range=(0, 255), seed=seed + 3),
        layers.RandomContrast(0.15, seed=seed + 4),
    ], name="augment")


def acquisition(x):
    """Per-film gamma (0.7-1.4), Gaussian blur (half the films, sigma up to 1.2 px at 224 px),
    noise (sd up to 6 grey levels) on a (B, H, W, 1) float batch in 0..255."""
    import tensorflow as tf

    batch = tf.shape(x)[0]
    uniform = tf.random.uniform  # seeded by keras.utils.set_random_seed
    gamma = tf.exp(uniform([batch, 1, 1, 1], tf.math.log(0.7), tf.math.log(1.4)))
    x = 255.0 * tf.pow(tf.clip_by_value(x, 0.0, 255.0) / 255.0 + 1e-6, gamma)
    sigma = uniform([], 0.3, 1.2)
    taps = tf.range(-2.0, 3.0)
    kernel1d = tf.exp(-0.5 * tf.square(taps / sigma))
    kernel1d = kernel1d / tf.reduce_sum(kernel1d)
    kernel = tf.reshape(kernel1d, [5, 1, 1, 1]) * tf.reshape(kernel1d, [1, 5, 1, 1])
    blurred = tf.nn.conv2d(x, kernel, strides=1, padding="SAME")
    use_blur = tf.cast(uniform([batch, 1, 1, 1]) < 0.5, x.dtype)
    x = use_blur * blurred + (1.0 - use_blur) * x
    noise_sd = uniform([batch, 1, 1, 1], 0.0, 6.0)
    x = x + tf.random.normal(tf.shape(x)) * noise_sd
    return tf.clip_by_value(x, 0.0, 255.0)


def jpeg_recompress(image):
    """One film (H, W, 1) uint8-range float: re-encode as JPEG at quality 40-95."""
    import tensorflow as tf

    encoded = tf.image.random_jpeg_quality(tf.cast(image, tf.uint8), 40, 95)
    return tf.cast(encoded, tf.float32)
