"""The GraphQL edge: thin resolvers, the per-request context, permissions and DataLoaders."""
