"""Everything a run's numbers depend on, and nothing else: the parsed code of this folder is a run's code identity."""
