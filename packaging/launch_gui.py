"""Entry point that PyInstaller freezes: the same `main()` as the `smmt-gui` script."""

import sys

from smmt_gui.app import main

if __name__ == "__main__":
    sys.exit(main())
