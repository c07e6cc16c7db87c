"""Migration scripts of the hub store, one per revision (0001_initial, ...)."""
