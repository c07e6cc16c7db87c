"""The credit data model: identifiers, record families and their fields, and the GraphQL types.

`schema.catalogue` is the single source of truth for which fields exist; `schema.graphql`
builds the Strawberry types from it (a full schema and policy-derived contracts).
"""
