"""Who may do what: authentication (OIDC provider, SMART on FHIR) and the authorisation policy."""
