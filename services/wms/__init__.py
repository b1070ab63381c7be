"""The WMS, both ways, one use case a module: `inbox` (its stock levels in), `feed` (every lock,
release and consumption out, in order) and `reconciliation` (both sides compared, and repaired
where the owner of a figure is clear)."""
