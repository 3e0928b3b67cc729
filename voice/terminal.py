"""What the microphone client shows and reads at a terminal: a status line and the space bar.

The status line says what the client is doing (listening, hearing you, thinking,
speaking) and, while it listens, the microphone's level as a small meter; it is redrawn
in place on a terminal and printed as a line per change elsewhere (a pipe, a log), where
a meter would be noise. Push-to-talk reads single keys: a terminal reports a key pressed,
never a key let go, so the space bar toggles talking rather than being held.
"""

import asyncio
import os
import sys
import termios
import tty
from collections.abc import Callable
from typing import TextIO

METER_CELLS = 20
METER_FLOOR_DBFS = -60.0


def meter(dbfs: float) -> str:
    """The level as a bar of METER_CELLS cells from METER_FLOOR_DBFS to 0 dBFS."""
    filled = round(METER_CELLS * min(1.0, max(0.0, 1 - dbfs / METER_FLOOR_DBFS)))
    return "[" + "#" * filled + "." * (METER_CELLS - filled) + "]"


class StatusLine:
    """The client's state, shown on the terminal's last line; messages print above it."""

    def __init__(self, out: TextIO = sys.stdout) -> None:
        self._out = out
        self._live = out.isatty()
        self._state = ""
        self._level: float | None = None
        self._drawn = False
        self.paused = False  # while a prompt owns the terminal

    def state(self, state: str) -> None:
        if state == self._state:
            return
        self._state, self._level = state, None
        if self._live:
            self._draw()
        else:
            self.say(f"({state})")

    def level(self, dbfs: float) -> None:
        """The microphone's level, drawn while listening or hearing speech."""
        self._level = dbfs
        if self._live and self._state in ("listening", "hearing you"):
            self._draw()

    def say(self, line: str, out: TextIO | None = None) -> None:
        """A line of its own (on `out`, standard output by default) above the status."""
        self.clear()
        print(line, file=out or self._out, flush=True)
        if self._live and self._state and not self.paused:
            self._draw()

    def clear(self) -> None:
        if self._drawn:
            self._out.write("\r\x1b[2K")
            self._out.flush()
            self._drawn = False

    def _draw(self) -> None:
        if self.paused:
            return
        shown = self._state
        if self._level is not None:
            shown += f" {meter(self._level)} {self._level:5.0f} dBFS"
        self._out.write("\r\x1b[2K" + shown)
        self._out.flush()
        self._drawn = True


class SpaceBar:
    """Calls `toggled(talking)` each time the space bar is pressed, in cbreak mode (keys
    arrive one by one, not echoed); `pause()` hands the terminal back for a prompt."""

    def __init__(self, toggled: Callable[[bool], None]) -> None:
        self._fd = sys.stdin.fileno()
        self._saved = termios.tcgetattr(self._fd)
        self._toggled = toggled
        self._loop = asyncio.get_running_loop()
        self.talking = False
        self.resume()

    def _key(self) -> None:
        if os.read(self._fd, 1) == b" ":
            self.talking = not self.talking
            self._toggled(self.talking)

    def pause(self) -> None:
        self._loop.remove_reader(self._fd)
        termios.tcsetattr(self._fd, termios.TCSADRAIN, self._saved)

    def resume(self) -> None:
        tty.setcbreak(self._fd)
        # A read returns at once, empty if no key is waiting (VMIN 0, VTIME 0): Ctrl-C
        # empties the input queue, and a key the loop was told of can be gone when it is
        # read. A blocking read then held the loop, so Ctrl-C did not end the client.
        mode = termios.tcgetattr(self._fd)
        mode[6][termios.VMIN], mode[6][termios.VTIME] = 0, 0
        termios.tcsetattr(self._fd, termios.TCSANOW, mode)
        self._loop.add_reader(self._fd, self._key)

    def close(self) -> None:
        self.pause()
