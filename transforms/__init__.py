"""Image transforms shared by the pipeline and training: decoding, CIELAB work, metrics."""
