"""The projections every store keeps in step with its writes (see `socle.store.projections`).

One list for the whole application, read by `FhirStore` the first time it writes: whoever builds a
store (the server, the CLI, an importer, a test), the derived tables stay in sync with the resources.
"""

from __future__ import annotations

from socle.store.projections import Projection


def installed_projections() -> list[Projection]:
    from socle.directory.projection import DirectoryProjection

    return [DirectoryProjection()]
