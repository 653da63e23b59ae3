"""Air-gap mirrors: APT repositories and OCI registries in one content-addressed store.

The generic service (`service`, `records`, `queries`, `bundle`, `gc`, `schedule`) drives every
kind through one protocol (`kind.MirrorKind`); the kinds are `apt/` and `oci/`, looked up by the
config's `kind` in `kinds.KINDS`.
"""
