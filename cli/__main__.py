"""`python -m cli`: the same as the `kminer` console script."""

import sys

from cli.main import main

sys.exit(main())
