"""SQLite databases (Master Market Data DB, TurboMode DB), their migrations, and the Parquet IO manager."""
