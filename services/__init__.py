"""Use cases: one function per thing the system does, called by resolvers, webhooks and workers."""
