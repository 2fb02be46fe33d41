"""SMMT Studio desktop app: a thin Qt shell over `smmt_core`.

The GUI calls the same public functions as the `smmt` command (on worker threads, see
`smmt_gui.workers`) and draws what they return; it never reaches into torch modules.
"""
