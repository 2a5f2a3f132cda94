"""Search: search parameters as data, the indexing pipeline and the query planner."""
