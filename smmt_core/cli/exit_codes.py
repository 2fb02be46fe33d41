"""The `smmt` command's exit codes (documented in `smmt_core.cli`), in a module of their own so that
every command module can import them at the top without importing the command line itself."""

EXIT_OK, EXIT_NEGATIVE, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130
EXIT_FAILED = EXIT_NEGATIVE  # the work ran but failed, not because of the input (TrainingError)
