"""Training engine: trainer (events + stop flag), metrics, energy, checkpoints, experiments."""
