"""Market-data sources (IBKR, Yahoo, CSV files, the built-in sample) and the per-symbol fallback chain."""
