"""Key material management: the signing keyring in the data directory, JWKS, rotation.

- `keys.manifest`: the on-disk layout of `<data-dir>/keys/` (never in the repository), key lives;
- `keys.keyring.Keyring`: the ES256 key that signs access tokens, the keys that verify them,
  the JWKS published at `/.well-known/jwks.json`; reloads itself when the manifest changes;
- `keys.rotation.rotate`: a new signing key, the old one verifying until its grace period ends;
- `keys.published`: the public halves other hosts publish in the hub store, which a keyring
  verifies with too (private keys stay on each host's disk).
"""
