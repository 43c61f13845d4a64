"""Campaigns: the Dentrix Ascend campaign lifecycle as an API (compose, review, submit,
schedule, pause, resume, results), sending through the messaging ledger."""
