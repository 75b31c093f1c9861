"""The project's on/off environment switches (SMOKE_TEST, SMOL_EMULATE_T4, ...), parsed by one function."""

from __future__ import annotations

import os


def env_flag(name: str, env: dict[str, str] | None = None, use: str = "") -> bool:
    """An on/off environment variable: unset, "", 0, false or no is off; 1, true or yes is on; anything else raises
    ValueError saying how to set it (`use` completes "use NAME=1...")."""
    value = (os.environ if env is None else env).get(name, "").strip().lower()
    if value in ("", "0", "false", "no"):
        return False
    if value in ("1", "true", "yes"):
        return True
    raise ValueError(f"{name}={value!r} is not understood: use {name}=1{use} or unset it.")
