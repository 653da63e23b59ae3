"""Air-gap mirrors: content-addressed store, APT and OCI sync, serving."""
