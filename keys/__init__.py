"""Key material management: the signing keyring in the data directory, JWKS, rotation.

`keys.keyring.Keyring` owns `<data-dir>/keys/` (generated on first run, never in the
repository): the ES256 key that signs access tokens, the keys that verify them, and the JWKS
published at `/.well-known/jwks.json`.
"""
