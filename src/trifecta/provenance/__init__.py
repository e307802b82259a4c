"""Where every number came from, after the fact: the lineage of every table cell and figure, its audit and the
RO-Crate."""
