"""dgxie: bare-metal provisioning for GPU clusters."""

__version__ = "0.1.0"

# The environment variable naming the config file (re-exported by dgxie.config; here, so `dgxie --help`
# reads no configuration module).
CONFIG_ENV = "DGXIE_CONFIG"
