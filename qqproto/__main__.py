"""``python -m qqproto``: hands over to the command line in qqproto.adapters."""

import sys

from qqproto.adapters.cli import main

sys.exit(main())
