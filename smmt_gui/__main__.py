"""`python -m smmt_gui` is the same as `smmt-gui`."""

import sys

from smmt_gui.app import main

sys.exit(main())
