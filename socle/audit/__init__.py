"""The audit trail: an AuditEvent for every access to data, hash-chained, searchable like any resource."""
