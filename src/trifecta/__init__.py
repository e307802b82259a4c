"""trifecta: reproduce 'The Trifecta: Three simple techniques for training deeper Forward-Forward networks'."""

__version__ = "0.3.0"  # the one home of the version (pyproject reads it; CITATION.cff and CHANGELOG.md are checked)
