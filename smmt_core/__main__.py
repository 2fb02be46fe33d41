import sys

from smmt_core.cli import main

sys.exit(main())
