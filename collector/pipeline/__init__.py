"""The pipeline: jobs, chunks, the spool, delivery, the daemon, gap healing and backfill."""
