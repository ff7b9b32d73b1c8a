"""`python -m workflow_lib <step> ...`: the entry point the Snakemake rules call."""

from workflow_lib.cli import main

raise SystemExit(main())
