import sys

from smmt_core.cli import command

sys.exit(command())
