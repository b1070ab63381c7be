"""The outside world: the database, the broker, and the WMS, POS and channel integrations."""
