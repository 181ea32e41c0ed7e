"""celery beat with a leader lease: several beats may run, one acts."""
