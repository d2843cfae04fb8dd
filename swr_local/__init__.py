"""swr on this machine: the AWS emulator (moto), the world builder, the event factory, the in-process Lambda
runtime and `swr demo`. Needs the `local` extra (`pip install 'swr[local]'`); the operator CLI (`swr_cli`)
never imports this package unless a local command runs.
"""
