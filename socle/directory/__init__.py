"""Annuaire Santé: the health directory (professionals, their activities, establishments).

National identifiers (RPPS, FINESS) and nomenclatures (TRE_G15 professions, TRE_R38 specialties) are
pure modules; `fhir` maps directory records to FHIR R4 Practitioner / PractitionerRole / Organization
/ Location resources shaped like the ANS directory; `imports` streams the public extractions (RPPS
"PS_LibreAcces" and FINESS) into the store through `actions`; `cli` is the `directory` sub-command.
The domain never touches SQL: it writes and reads through the store session and the search engine.
"""
