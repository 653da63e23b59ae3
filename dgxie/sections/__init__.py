"""The configuration's sections: frozen, validated, typed (pydantic), one shape end to end.

`dgxie.config.Settings` is the whole file (loaded and validated only by the entry points); its
sections are the classes here, and the entry points hand the same section objects to the
services inside a `Site` (dgxie/site.py). Services may import this module for the types, never
`dgxie.config` (an import-linter contract): they are given configuration, they never read it.
Every model is frozen: a service cannot change what the operator configured.

One module per group (`serving`, `roles`, `mirrors`); import the names from this package.
"""

from dgxie.sections.instance import ROLES, InstanceConfig, Role
from dgxie.sections.mirrors import (
    OCI_REPOSITORY,
    AnyMirrorConfig,
    AptMirrorConfig,
    MirrorConfig,
    OciMirrorConfig,
    TagRules,
)
from dgxie.sections.roles import (
    HandoffConfig,
    InstallConfig,
    ProfileConfig,
    RoleConfig,
    SiteConfig,
    default_roles,
)
from dgxie.sections.serving import (
    ApiConfig,
    BmcConfig,
    BootConfig,
    DhcpConfig,
    FirmwareConfig,
    HaConfig,
    SubnetConfig,
    TftpConfig,
)

__all__ = [
    "OCI_REPOSITORY",
    "ROLES",
    "AnyMirrorConfig",
    "ApiConfig",
    "AptMirrorConfig",
    "BmcConfig",
    "BootConfig",
    "DhcpConfig",
    "FirmwareConfig",
    "HaConfig",
    "HandoffConfig",
    "InstallConfig",
    "InstanceConfig",
    "MirrorConfig",
    "OciMirrorConfig",
    "ProfileConfig",
    "Role",
    "RoleConfig",
    "SiteConfig",
    "SubnetConfig",
    "TagRules",
    "TftpConfig",
    "default_roles",
]
