"""The stores' POS systems, for those that keep no socket open: webhooks."""
