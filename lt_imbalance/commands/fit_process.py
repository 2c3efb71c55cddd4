"""What a ``lt-imbalance fit`` that ran in its own process (a tuner trial, a sweep run) failed of."""

from __future__ import annotations

import re


def failure_reason(output: str, returncode: int) -> str:
    """The error line of a failed fit's output (the last ``...Error: message`` line, or the short
    message of a user error), else its last line, else the exit status."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [
        line for line in lines if re.match(r"^[\w.]*(Error|Exception|Interrupt)\b.*:", line) or line.startswith("lt-imbalance: error:")
    ]
    return (errors or lines or [f"exit {returncode}"])[-1][:500]
