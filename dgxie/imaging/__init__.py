"""Image and agent builds from dgxie's own APT mirrors (issue 11; docs/deploy.md).

`build` (the sequence: resolve, bootstrap, pack, store), `recipe` (images/<name>/recipe.yaml and
the input key), `source` (a mirror snapshot on disk, its key, the package check), `bootstrap`
(mmdebstrap, the scratch directory), `rootfs` (rootfs.tar.zst, kernel, initrd), `initramfs`
(the agent's initramfs tree), and the pure codecs `cpio` (newc writer) and `elf` (DT_NEEDED).
"""
