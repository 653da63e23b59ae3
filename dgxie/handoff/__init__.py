"""Role handoff: Ansible inventory, Slurm config, bootstrap runners."""
