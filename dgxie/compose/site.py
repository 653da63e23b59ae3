"""Settings -> `Site`: the sections the services are given (the same frozen objects, no copies)."""

from __future__ import annotations

import os
from types import MappingProxyType

from dgxie.config import CONFIG_ENV, Settings
from dgxie.crypto import SecretBox, load_or_create_key
from dgxie.site import Site


def build_site(settings: Settings) -> Site:
    """The site for `settings`; creates the data directory's secret key on first use (0600)."""
    secret = settings.secret_key.get_secret_value() if settings.secret_key else None
    box = SecretBox(load_or_create_key(settings.data_dir, secret))
    return Site(box=box, data_dir=settings.data_dir, public_url=settings.public_url,
                config_path=os.environ.get(CONFIG_ENV), identity=settings.site,
                vars=MappingProxyType(dict(settings.vars)),
                subnets=tuple(s.cidr for s in settings.dhcp.subnets), discovery=settings.dhcp.discovery,
                boot=settings.boot, roles=MappingProxyType(dict(settings.roles)),
                profiles=MappingProxyType(dict(settings.profiles)), install=settings.install,
                handoff=settings.handoff, mirrors=tuple(settings.mirrors), bmc=settings.bmc,
                firmware=settings.firmware, instance=settings.instance)
