"""`python -m pipeline ...`: colorize an archive from the command line."""

from pipeline.colorize import main

raise SystemExit(main())
