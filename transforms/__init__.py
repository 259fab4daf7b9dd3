"""Image math shared by the pipeline and training, NumPy and OpenCV only: codec, lab, letterbox, balance, metrics."""
