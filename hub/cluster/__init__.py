"""Several hub processes as one hub: the store's change feed (`changes`) and the processes sharing the store (`members`)."""
