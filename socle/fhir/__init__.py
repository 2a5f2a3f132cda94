"""FHIR R4: definitions, validation, the REST API (CRUD, history, search, bundles, operations)."""
