"""xenlab: a Xen lab for unikernel developers, as a library the CLI is a thin layer over."""

__version__ = "0.1.0"
