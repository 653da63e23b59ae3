"""Kind `oci`: container image registries (NGC, Docker Hub, ...) mirrored and served on `/v2/`.

`client` and `auth` (the distribution API, pull side), `rules` (which tags and platforms),
`snapshot` (snapshot documents), `sync` (upstream -> store + snapshot), `store` (the `/v2/` read
side), `kind` (the `MirrorKind` the generic service drives).
"""
