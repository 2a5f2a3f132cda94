"""INS identity domain: NIR/NIA checks, birthplace codes, RNIV identity statuses, FHIR Patient mapping.

Layers, each in its own module:
- `nir`: parsing and validation of NIR / NIA numbers (pure);
- `communes`: the COG commune table (data file + loader);
- `traits`: the five strict traits and how they are written (pure);
- `record`: what an identity record is (`IdentityRecord`, `InsMatricule`, `InsiResult`);
- `rules`: the RNIV status machine, driven by the table in `data/rniv.json` (pure);
- `fhir`: IdentityRecord <-> FR Core Patient INS, and the exchange form that hides the INS;
- `queries` / `actions`: reads and `do_*` writes through a `StoreSession`;
- `insi` / `insi_api`: the simulated INSi teleservice (its own reference registry tables, searches by
  Carte Vitale or traits, verification) and its HTTP routes under `/insi`;
- `vigilance`: potential duplicates among the stored Patients, and merging two identities.

`actions` does not call the teleservice: it receives its answers (`insi.do_qualify_with_insi` asks).
"""
