"""One module per on-disk dataset layout; `smmt_core.data.loaders` picks the right one.

Every layout maps what it finds to `Subject`/`Cohort` (smmt_core.data.subject) through the shared
helpers in `common` (column aliases, value parsing, image discovery), so a score read from a BIDS
participants.tsv, an ADNIMERGE row or a clinical.json ends up with the same name and meaning.
"""
