"""Connectors we run ourselves: they read a PMS and feed the mirror through the same
`api.practice.ingest.sync_batch` a bridge's pushes go through (base.py: the protocol and
the runner; opendental.py: Open Dental over MySQL/MariaDB)."""
