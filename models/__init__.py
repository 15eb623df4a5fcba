"""Shipped models: the default int8 MobileNet, its float32 sibling and the int8 shallow CNN, each with its card."""
