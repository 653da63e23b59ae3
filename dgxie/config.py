"""Configuration: one YAML file plus `DGXIE_*` environment variables.

Read only by the entry points (`dgxie.cli`, `dgxie.compose`); its sections are the frozen models
of `dgxie.sections`, which reach the services unchanged inside a `Site`. Every key is also
`DGXIE_<SECTION>__<KEY>` in the environment (environment wins over the file). `load()` validates
everything at once and raises `ConfigError` with one line per mistake, naming the key path, e.g.
``dhcp.subnets[0].pool: 10.0.1.5 is outside 10.0.0.0/24``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, PrivateAttr, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from dgxie import CONFIG_ENV as CONFIG_ENV
from dgxie.errors import ConfigError
from dgxie.sections import (
    AnyMirrorConfig,
    ApiConfig,
    BmcConfig,
    BootConfig,
    DhcpConfig,
    FirmwareConfig,
    HandoffConfig,
    InstallConfig,
    InstanceConfig,
    ProfileConfig,
    RoleConfig,
    SiteConfig,
    TftpConfig,
    default_roles,
)
from dgxie.sections.public_url import derive_public_url


class Settings(BaseSettings):
    """The whole configuration. See docs/configuration.md for every key."""

    model_config = SettingsConfigDict(env_prefix="DGXIE_", env_nested_delimiter="__", extra="forbid")

    # Defaults do not depend on the current directory: the service's data under /var/lib/dgxie
    # (`make run` sets DGXIE_DATA_DIR=var), the database in it unless database_url is set.
    database_url: str = ""  # default: sqlite:///<data_dir>/dgxie.db
    data_dir: Path = Path("/var/lib/dgxie")
    public_url: str = ""  # unset: derived from api.listen (dgxie/sections/public_url.py); how: public_url_note
    secret_key: SecretStr | None = None
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    api: ApiConfig = ApiConfig()
    dhcp: DhcpConfig = DhcpConfig()
    tftp: TftpConfig = TftpConfig()
    boot: BootConfig = BootConfig()
    profiles: dict[str, ProfileConfig] = {}
    roles: dict[str, RoleConfig] = Field(default_factory=default_roles)
    handoff: HandoffConfig = HandoffConfig()
    mirrors: list[AnyMirrorConfig] = []
    vars: dict[str, Any] = {}
    site: SiteConfig = SiteConfig()
    install: InstallConfig = InstallConfig()
    bmc: BmcConfig = BmcConfig()
    firmware: FirmwareConfig = FirmwareConfig()
    instance: InstanceConfig = Field(default_factory=InstanceConfig)
    _public_url_note: str = PrivateAttr(default="")

    @field_validator("database_url")
    @classmethod
    def _db(cls, v: str) -> str:
        if v and not v.startswith(("sqlite:", "postgresql")):  # "": the default, set by _cross
            raise ValueError(f"{v.split(':')[0]!r}: only sqlite:/// and postgresql+psycopg:// are supported")
        return v

    @field_validator("public_url")
    @classmethod
    def _url(cls, v: str) -> str:
        if v and not v.startswith(("http://", "https://")):
            raise ValueError(f"{v!r} is not an http(s) URL")
        return v.rstrip("/")

    @model_validator(mode="after")
    def _cross(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir / 'dgxie.db'}"
        for name, role in self.roles.items():
            if not role.groups:
                raise ValueError(f"roles.{name}.groups: a role needs at least one Ansible group")
            if role.bootstrap == "ansible" and not role.playbook:
                raise ValueError(f"roles.{name}.playbook: bootstrap ansible needs a playbook")
            if role.bootstrap == "cloud-init" and not role.script:
                raise ValueError(f"roles.{name}.script: bootstrap cloud-init needs a script template")
        for name, prof in self.profiles.items():
            if prof.role is not None and prof.role not in self.roles:
                raise ValueError(f"profiles.{name}.role: unknown role {prof.role!r}")
        seen: set[str] = set()
        for m in self.mirrors:
            if m.name in seen:
                raise ValueError(f"mirrors: duplicate name {m.name!r}")
            seen.add(m.name)
        if not self.public_url:
            self.public_url, self._public_url_note = derive_public_url(
                self.api.listen, [sub.cidr for sub in self.dhcp.subnets])
        return self

    @property
    def public_url_note(self) -> str:
        """How public_url was derived from api.listen; "" when the config sets it."""
        return self._public_url_note

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (env_settings, init_settings)


def _format_loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.startswith(("function-", "function_")):
            continue
        elif loc[:1] == ("mirrors",) and part in ("apt", "oci"):
            continue  # the discriminator tag of a mirror entry
        else:
            out += ("." if out else "") + part
    return out


def format_errors(exc: ValidationError) -> str:
    """One line per mistake: `key.path: message`."""
    lines = []
    for err in exc.errors():
        msg = str(err["msg"]).removeprefix("Value error, ")
        loc = _format_loc(tuple(err["loc"]))
        # A model validator's message may already start with the sub-key it is about.
        sub_key = re.match(r"^[a-z_][a-z0-9_.\[\]]*: ", msg)  # a model validator naming its own sub-key
        lines.append(f"{loc}.{msg}" if loc and sub_key else f"{loc}: {msg}" if loc else msg)
    return "\n".join(lines)


def load(path: str | os.PathLike[str] | None = None) -> Settings:
    """Load and validate the config from `path` (or `$DGXIE_CONFIG`, or defaults only)."""
    path = path or os.environ.get(CONFIG_ENV) or None
    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        try:
            raw = yaml.safe_load(p.read_text())
        except OSError as exc:
            raise ConfigError(f"config {p}: {exc.strerror}") from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" line {mark.line + 1}" if mark is not None else ""
            raise ConfigError(f"config {p}{where}: not valid YAML") from None
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise ConfigError(f"config {p}: the top level must be a mapping")
        data = raw
    try:
        return Settings(**data)
    except ValidationError as exc:
        raise ConfigError(format_errors(exc)) from None
