"""The local backend: every cell in this process, one after another, with live training events.

This is the grid as it always ran: CellStarted, the run's own training events, CellFinished; the
stop flag ends the current run at its next batch and the grid there. A crash inside one cell is
recorded as a failed row and the grid goes on (no retry: rerunning the command retries it); an
input error (SMMTError) stops the grid at once, since every other cell would fail the same way.
"""

from __future__ import annotations


class LocalBackend:
    name = "local"

    def run(self, spec, out_dir, pending, book, stop) -> bool:
        from smmt_core.experiments.cell import CellStarted, crash_message, run_cell

        cohort_cache: dict = {}  # baselines of one split share the loaded cohort
        for item in pending:
            if stop is not None and stop.is_set():
                return True
            if not item.cell.is_baseline:
                book.emit(CellStarted(item.index, book.total, item.cell, item.folder))
            try:
                outcome = run_cell(spec, out_dir, item, on_event=book.emit, stop=stop, cohort_cache=cohort_cache)
            except Exception as error:  # a crash inside one cell: record it, go on with the grid
                book.finished(item, "failed", crash_message(error))
                continue
            if outcome.error is not None:
                raise outcome.error
            book.finished(item, outcome.status, outcome.message)
            if outcome.status == "stopped":
                return True
        return False
