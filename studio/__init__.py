"""The hint studio: a local web front end to review a night's results and place known colors with clicks.

It sits above `pipeline/` (which never imports it) and calls the pipeline's own scan selection,
model loading, hints reading and colorizing; `revivacolor studio --input SCANS --hints HINTS`.
"""
