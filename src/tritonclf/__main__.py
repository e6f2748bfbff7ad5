"""``python -m tritonclf JOB ...``: the same as the ``tritonclf`` command."""

import sys

from tritonclf.cli import main

sys.exit(main())
