"""testinfra checks of a lab, shipped inside the package so an installed xenlab runs them
(`xenlab check`); the test suite runs the same functions against its test hosts."""
