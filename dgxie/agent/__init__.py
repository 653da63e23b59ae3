"""dgxie's deploy agent, server side.

Pure codecs (no database, no configuration, no I/O beyond the bytes given):
`bundle.py` reads the raw facts tar the agent uploads, `parse.py` turns each member into values,
`schemas.py` holds the typed facts, `facts.py` assembles them (`parse_bundle`, `summary`),
`bypath.py` derives udev's by-path names and `disks.py` picks the deploy disks from facts and a
profile's `disk:` rule. The agent's HTTP endpoints and their service come beside them.
The bundle format and the protocol: docs/deploy.md.
"""
