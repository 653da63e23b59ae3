"""Secrets at rest: symmetric encryption (Fernet: AES-128-CBC + HMAC-SHA256) and token hashing.

The key comes from the config (`secret_key`) or from `DATA_DIR/secret.key`, generated with mode
0600 on first start. Losing the key makes stored BMC passwords unreadable, so back it up.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from dgxie.errors import ConfigError
from dgxie.filemodes import private_dir

KEY_FILE = "secret.key"


class SecretBox:
    """Encrypts and decrypts small secrets (BMC passwords, join tokens, API keys)."""

    def __init__(self, key: bytes) -> None:
        try:
            self._fernet = Fernet(key)
        except (ValueError, TypeError):
            raise ConfigError("secret_key: not a valid key (32 url-safe base64-encoded bytes)") from None
        self._mac_key = hashlib.sha256(b"dgxie derive\0" + base64.urlsafe_b64decode(key)).digest()

    def seal(self, plaintext: str) -> bytes:
        return self._fernet.encrypt(plaintext.encode())

    def derive(self, label: str, message: str) -> str:
        """HMAC-SHA256(site key, label NUL message) as 43 url-safe characters: a value only the
        holder of the key can compute (the boot token from a node's public nonce)."""
        mac = hmac.digest(self._mac_key, label.encode() + b"\0" + message.encode(), "sha256")  # one-shot: C
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()

    def open(self, ciphertext: bytes) -> str:
        try:
            return self._fernet.decrypt(ciphertext).decode()
        except InvalidToken:
            raise ConfigError("a stored secret cannot be decrypted: was secret_key changed?") from None


def load_or_create_key(data_dir: Path, configured: str | None = None) -> bytes:
    """The configured key, else `data_dir/secret.key`, created 0600 if missing."""
    if configured:
        return configured.encode()
    path = data_dir / KEY_FILE
    if path.exists():
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            raise ConfigError(f"{path}: mode {mode:o} lets others read the key; chmod 600 it")
        return path.read_bytes().strip()
    private_dir(data_dir)
    key = Fernet.generate_key()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key + b"\n")
    return key


def new_token(prefix: str = "dgxie") -> str:
    """A new bearer token: 256 bits of randomness, with a prefix that secret scanners can find."""
    return f"{prefix}_{secrets.token_urlsafe(32)}"


def hash_token(token: str) -> str:
    """SHA-256 of a high-entropy token (a slow KDF adds nothing for 256-bit random tokens)."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_nonce() -> str:
    """A fresh public nonce (a node's boot token is derived from it with the site key)."""
    return secrets.token_urlsafe(24)
