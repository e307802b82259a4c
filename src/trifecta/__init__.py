"""trifecta: reproduce 'The Trifecta: Three simple techniques for training deeper Forward-Forward networks'."""
