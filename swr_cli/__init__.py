"""swr's operator CLI (`swr`): talks to AWS only; the local drill is `swr_local`."""

from pathlib import Path

#: The repository root: where app.py and cdk.json live (the CLI is installed from it, editable).
PROJECT_ROOT = Path(__file__).resolve().parent.parent
