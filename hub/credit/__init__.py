"""Credit governance (issue 11): findings, red and black lists, joint rewards and sanctions with
credit checks, nine-level ratings and supervision plans — hub-owned decisions over federated
records. `CreditGovernance` (governance.py) is the one entry; docs/governance.md walks through it.

Import from the modules (`xinlian.hub.credit.governance`, `.model`, ...): this package's
`__init__` imports nothing, so the executor can use the credit values without a cycle."""
