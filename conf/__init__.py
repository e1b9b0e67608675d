"""neurodecode's config registry: Hydra/OmegaConf YAML files, one folder per config group (shipped as neurodecode.conf)."""
