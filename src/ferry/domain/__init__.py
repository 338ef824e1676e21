"""Ferry's domain: entities, states and the rules between them. Pure: no I/O."""
