"""Tasks: the ledger, the runner that drives them, and their results on disk."""
