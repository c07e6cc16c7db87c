"""Key material management: the signing keyring in the data directory, JWKS, rotation."""
