"""Colorization models: Keras builders, the registry of bundled models, and training."""
