"""The audit trail (seed 004's ``integration_logs``): who did what to which target, and how
it ended, for the API's state-changing calls, the CLI's operations and the jobs whose
outcome changes state (written by triggers in the outcome's own transaction: alembic
0012).

The door: ``record`` (one row), ``AuditReader`` (a tenant's rows, filtered, newest first;
the API runs it as the tenant role under row-level security) and ``prune`` (retention,
AUDIT_RETENTION_DAYS). A row never holds a body: bodies carry texts, codes and passwords.
"""

from integration_service.audit.trail import AuditEntry, AuditReader, prune, record, target_of

__all__ = ["AuditEntry", "AuditReader", "prune", "record", "target_of"]
