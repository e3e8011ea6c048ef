"""`python -m jobs.transport`: see jobs/transport/cli.py."""

import sys

from jobs.transport.cli import main

sys.exit(main())
