"""The FHIR store: versioned resources and their search index on SQLite or PostgreSQL.

Every domain persists clinical data through this package; nothing else writes these tables.
"""
