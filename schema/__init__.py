"""The GraphQL schema: strawberry types, inputs and enums; `schema.root.build_schema` makes it and
`schema.graphql` is its exported SDL, the contract clients are written against."""
