"""Tools that run the pipeline (training data, model comparison, contact sheets); not installed, not shipped."""
