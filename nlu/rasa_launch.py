"""Rasa's command line, run by the Rasa environment's Python instead of the `rasa` script.

    .venv-rasa/bin/python -I nlu/rasa_launch.py <rasa arguments>

It does three things first that the `rasa` script cannot:
- takes the API token from RASA_LAUNCH_AUTH_TOKEN and hands it to Rasa as `--auth-token`
  inside the process: arguments are public (`ps`), a process's environment is not;
- dies with the process that started it (PR_SET_PDEATHSIG), when that process names
  itself in RASA_LAUNCH_PARENT_PID, so a killed server leaves no Rasa behind;
- imports `skops.io` before Rasa imports TensorFlow: skops scans every loaded module
  on import, which took seconds once TensorFlow was loaded (Rasa starts ~5 s sooner).

This file runs under Python 3.10 with Rasa's packages and imports nothing of ours; -I keeps
its folder off the module path (nlu/numbers.py would shadow the standard library's).
"""

import ctypes
import os
import signal
import sys

PARENT_PID_VARIABLE = "RASA_LAUNCH_PARENT_PID"
TOKEN_VARIABLE = "RASA_LAUNCH_AUTH_TOKEN"
PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> None:
    """Ask Linux to kill this process when the thread that started it ends."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        sys.exit("rasa_launch: the parent process is gone")


def main() -> None:
    parent_pid = os.environ.get(PARENT_PID_VARIABLE)
    if parent_pid and sys.platform == "linux":
        die_with_parent(int(parent_pid))
    import skops.io  # noqa: F401  (see the module docstring)
    from rasa.__main__ import main as rasa_main

    token = os.environ.pop(TOKEN_VARIABLE, "")
    sys.argv = ["rasa", *sys.argv[1:], *(["--auth-token", token] if token else [])]
    rasa_main()


if __name__ == "__main__":
    main()
