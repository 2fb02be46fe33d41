"""`python -m smmt_core.cli ...`: the `smmt` command, e.g. under torchrun:

    torchrun --nproc-per-node 2 -m smmt_core.cli train --data demo --device cpu
"""

import sys

from smmt_core.cli import command

if __name__ == "__main__":
    sys.exit(command())
