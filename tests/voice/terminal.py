"""A program run on a pseudo-terminal, as a person at a terminal runs it: it sees a real
terminal (hidden prompts, single keys, Ctrl-C) and the test reads what the screen shows."""

import fcntl
import os
import subprocess
import termios
import threading
import time
from pathlib import Path


class Terminal:
    def __init__(self, argv: list[str], env: dict[str, str], cwd: Path) -> None:
        master, slave = os.openpty()
        self.process = subprocess.Popen(
            argv,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            cwd=cwd,
            start_new_session=True,  # its own session, with the terminal as its controlling one
            preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0),
        )
        os.close(slave)
        self._master = master
        self._output = bytearray()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self._master, 4096)
            except OSError:  # the program ended and the terminal closed
                return
            if not data:
                return
            self._output += data

    @property
    def screen(self) -> str:
        """Everything the program wrote, status-line redraws included."""
        return self._output.decode(errors="replace")

    def expect(self, text: str, timeout: float = 60, after: int = 0) -> int:
        """Waits until `text` shows (at or after offset `after`); returns where it ends."""
        deadline = time.monotonic() + timeout
        while (found := self.screen.find(text, after)) < 0:
            if self.process.poll() is not None:
                self._reader.join(timeout=2)  # what it wrote last may still be in transit
                found = self.screen.find(text, after)
                assert found >= 0, f"exited without showing {text!r}: {self.screen}"
                break
            assert time.monotonic() < deadline, f"{text!r} not shown in {timeout} s: {self.screen}"
            time.sleep(0.05)
        return found + len(text)

    def type(self, keys: str) -> None:
        os.write(self._master, keys.encode())

    def quit(self) -> int:
        """Ctrl-C, as a person ends the client; returns its exit status."""
        if self.process.poll() is None:
            self.type("\x03")
        return self.wait()

    def wait(self, timeout: float = 60) -> int:
        """The program's exit status, once it has ended by itself."""
        status = self.process.wait(timeout=timeout)
        self._reader.join(timeout=5)
        os.close(self._master)
        return status
