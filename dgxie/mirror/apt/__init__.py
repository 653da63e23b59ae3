"""Kind `apt`: Debian/Ubuntu repositories mirrored as signed, verified file trees.

`repository` (Release, Packages, gpgv: the protocol), `signing` (dgxie's key for filtered
mirrors), `sync` (upstream -> manifest), `tree` (snapshots as hardlink trees), `kind` (the
`MirrorKind` the generic service drives).
"""
