"""The `revivacolor` command: `revivacolor studio ...` starts the hint studio; anything else is the pipeline's
command line, unchanged (`revivacolor --input ... --output ...`)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["studio"]:
        from studio.cli import main as studio_main

        return studio_main(argv[1:])
    from pipeline.colorize import main as pipeline_main

    return pipeline_main(argv)
