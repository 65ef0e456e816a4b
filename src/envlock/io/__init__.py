"""The only code that touches the network, the filesystem, subprocesses and the host."""
