"""dgxie: bare-metal provisioning for GPU clusters."""

__version__ = "0.1.0"
