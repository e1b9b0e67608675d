"""Dataset manifests (YAML), shipped with neurodecode as neurodecode.data_manifests."""
