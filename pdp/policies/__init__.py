"""Policy sets: load a directory, validate, compile, reload."""
