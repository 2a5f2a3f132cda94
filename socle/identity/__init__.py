"""INS identity domain: NIR/NIA checks, birthplace codes, RNIV identity statuses, FHIR Patient mapping.

Layers, each in its own module:
- `nir`: parsing and validation of NIR / NIA numbers (pure);
- `communes`: the COG commune table (data file + loader);
- `traits`: the five strict traits and how they are written (pure);
- `record`: what an identity record is (`IdentityRecord`, `InsMatricule`, `InsiResult`);
- `rules`: the RNIV status machine, driven by the table in `data/rniv.json` (pure);
- `fhir`: IdentityRecord <-> FR Core Patient INS, and the exchange form that hides the INS;
- `queries` / `actions`: reads and `do_*` writes through a `StoreSession`.

The INSi teleservice itself (the reference registry) is not here: `actions` receives its answers.
"""
