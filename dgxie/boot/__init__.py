"""What a node boots: images, profiles, the boot decision and the rendered artefacts."""
