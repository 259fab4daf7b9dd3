"""The RevivaColor Beam pipeline: `pipeline.run(argv)` colorizes an archive."""

from pipeline.colorize import run

__all__ = ["run"]
