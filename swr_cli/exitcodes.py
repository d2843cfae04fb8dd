"""The exit codes of `swr`, defined once (docs/cli.md lists them; tests/cli checks each)."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """What a script can tell from `swr`'s exit status."""

    #: Done; every check passed.
    OK = 0
    #: A check or invariant failed, the config is invalid, a node or switcher was not found, an operation
    #: did not complete.
    FAILED = 1
    #: The command line is wrong (argparse's own code), or --profile names no profile.
    USAGE = 2
    #: The command refused to act and changed nothing: `drill` against a real account without --yes, or a
    #: node whose state forbids it (hold of a SWITCHING node, resume of an ACTIVE one, drill of a held one).
    REFUSED = 3
    #: AWS (or the endpoint) answered with an error, could not be reached, or no credentials were found.
    AWS_ERROR = 4
    #: `validate`: the config is valid (offline checks passed) but the live checks were skipped for want
    #: of AWS credentials.
    LIVE_SKIPPED = 5
    #: `demo`, or `drill` against a local endpoint, without the local emulator installed (the `local`
    #: extra: pip install 'swr[local]'); nothing was done.
    NEEDS_LOCAL_EXTRA = 6
