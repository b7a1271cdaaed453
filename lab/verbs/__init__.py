"""One module per lab verb (up, halt, destroy, status); each is a function the CLI and tests call."""
