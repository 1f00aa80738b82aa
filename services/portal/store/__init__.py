"""The portal's tables: SQL lives here only."""
