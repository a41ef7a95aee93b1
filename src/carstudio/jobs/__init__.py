"""The batch engine: jobs and rows in a database, one queued task per row, a ZIP at the end."""
