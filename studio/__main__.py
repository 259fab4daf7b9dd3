"""`python -m studio --input SCANS --hints HINTS ...`, the same as `revivacolor studio ...`."""

import sys

from studio.cli import main

sys.exit(main())
