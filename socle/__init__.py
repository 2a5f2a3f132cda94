"""Socle: an open-source e-health platform built on one FHIR R4 store."""

__version__ = "0.1.0"
