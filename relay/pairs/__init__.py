"""Consumer/provider pair state, its store, badge SVGs and badge URLs."""
