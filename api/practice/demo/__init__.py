"""A generated demo practice: `generator` makes the PMS's rows (deterministic per seed),
`loader` writes them into the mirror (through sync_batch, or with COPY for big ones)."""
