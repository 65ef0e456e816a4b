"""Materialisers: the lock is the only input; each returns text or a plan (pure)."""
