"""Where every number came from: code hashes, each run's record, the lineage, its audit and the RO-Crate."""
