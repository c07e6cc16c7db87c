"""HTTP endpoints of the hub (GraphQL, health); OAuth2 endpoints live in `hub.auth`."""
