"""`python -m voice.mic_client`: talk to the assistant's /ws/voice from a terminal.

Streams the microphone (or `--input-wav FILE`, paced in real time) as 100 ms frames of
PCM16LE mono at 16 kHz, shows a status line (listening with a level meter, hearing you,
thinking, speaking), prints what the server heard and answered with its timings, plays the
spoken reply (or writes it to `--output-wav FILE`), and asks for the password with a hidden
prompt when a transfer needs it. When standard input is not a terminal the password is the
next line of it (scripts and tests), or `--password-env VAR` names a variable holding it.
The password is never printed. `--email` logs in first (the same hidden prompt) instead of
`--token`; `--push-to-talk` sends the microphone only between two presses of the space bar.

Exit status: 0 when the server answered without an error, 1 when it failed or hung up,
2 when a device, PortAudio or the WAV file is missing or unusable, 3 when the server or
the login refused the credentials. With `--input-wav` the client sends the file, says
`end_of_speech`, waits for the replies to finish (including a password step) and exits.
Latencies are printed from the end of speech (the last frame above -40 dBFS sent), or
from the password message: to the first reply byte received and, on a speaker, to the
first reply sample due at the device.
"""

import argparse
import asyncio
import contextlib
import getpass
import json
import os
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from voice.sound_devices import (
    FRAME_S,
    CannotStart,
    Microphone,
    Speaker,
    device_list,
    level_dbfs,
    load_sounddevice,
    pick_device,
)
from voice.sound_files import WavRecorder, wav_frames
from voice.terminal import SpaceBar, StatusLine

SPEECH_DBFS = -40.0  # a frame louder than this is taken for speech
QUIET_S = 1.0  # after the last reply's audio, this long with no new event ends a file run
PTT_TAIL_S = 0.4  # push-to-talk: the microphone is sent this long after the space bar
PLAYED_WAIT_S = 2.0  # how long to wait for the speaker to report a reply's first sample


class Refused(Exception):
    """The server or the login refused the credentials; the message says what to do."""


def voice_url(url: str, user_id: int | None, token: str | None) -> str:
    """`url` with user_id (demo mode, or naming the token's user) and token in its query."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query)
    if user_id is not None or not token:
        query.append(("user_id", str(1 if user_id is None else user_id)))
    if token:
        query.append(("token", token))
    return urlunsplit(parts._replace(query=urlencode(query)))


def login(url: str, email: str, password: str) -> str:
    """An access token from `/api/auth/login` on the server that serves the socket `url`."""
    parts = urlsplit(url)
    scheme = "https" if parts.scheme == "wss" else "http"
    path = parts.path.removesuffix("/ws/voice") + "/api/auth/login"
    form = urlencode({"username": email, "password": password}).encode()
    request = urllib.request.Request(urlunsplit((scheme, parts.netloc, path, "", "")), form)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return str(json.load(response)["access_token"])
    except HTTPError as error:
        with contextlib.suppress(ValueError):
            raise Refused(f"login refused: {json.load(error)['message']}") from error
        raise Refused(f"login refused: HTTP {error.code}") from error
    except (URLError, OSError) as error:
        raise ConnectionError(f"cannot log in at {request.full_url}: {error}") from error


def read_password(prompt: str, env_name: str | None) -> str:
    """From the environment variable, a hidden prompt, or the next line of standard input."""
    if env_name:
        return os.environ.get(env_name, "")
    if sys.stdin.isatty():
        return getpass.getpass(f"{prompt} (hidden): ")
    print(f"{prompt}: reading a line from standard input", flush=True)
    return sys.stdin.readline().rstrip("\r\n")


class Client:
    """One connection: sends frames, reacts to events, knows when a file run is over."""

    def __init__(
        self,
        socket: ClientConnection,
        sink: Speaker | WavRecorder,
        password_env: str | None,
        status: StatusLine,
    ) -> None:
        self.socket = socket
        self.sink = sink
        self.password_env = password_env
        self.status = status
        self.keys: SpaceBar | None = None  # push-to-talk
        self.released_at = 0.0  # push-to-talk: when the space bar ended the talking
        self.replies = 0
        self.errors = 0
        self.speaking = False  # between audio_start and audio_end
        self.asking = False  # waiting for the user to give the password
        self.checking = False  # the password was sent, its reply has not come yet
        self.last_event = time.monotonic()
        # What the latencies printed are measured from: (instant, its name).
        self.mark = (time.monotonic(), "connecting")
        self.first_audio = False
        self.reply_mark = self.mark  # the mark of the reply being spoken
        self._tasks: set[asyncio.Task[None]] = set()

    def listening(self) -> str:
        """The resting state: listening, or waiting for the space bar."""
        return "press space to talk" if self.keys and not self.keys.talking else "listening"

    async def send_file(self, frames: list[bytes]) -> None:
        """Frames in real time; the end of speech is the last loud frame sent (estimated)."""
        started = time.monotonic()
        for index, frame in enumerate(frames):
            await asyncio.sleep(max(0.0, started + (index + 1) * FRAME_S - time.monotonic()))
            await self.send_frame(frame)
        await self.socket.send(json.dumps({"type": "end_of_speech"}))

    async def send_microphone(self, microphone: Microphone) -> None:
        async for frame in microphone.frames():
            if self.keys is None or self.keys.talking or time.monotonic() < self.released_at:
                await self.send_frame(frame)
                self.status.level(level_dbfs(frame))
            elif self.released_at:  # the tail after the space bar is over: the turn ends
                self.released_at = 0.0
                await self.socket.send(json.dumps({"type": "end_of_speech"}))

    async def send_frame(self, frame: bytes) -> None:
        await self.socket.send(frame)
        if level_dbfs(frame) > SPEECH_DBFS:
            self.mark = (time.monotonic(), "the end of speech")

    def push_to_talk(self, talking: bool) -> None:
        """The space bar: talking stops a reply being played; done sends PTT_TAIL_S more
        (people press as their last word ends, and the sound server delivers it later),
        then says end_of_speech."""
        if talking:
            self.sink.stop()
            self.released_at = 0.0
        else:
            self.released_at = time.monotonic() + PTT_TAIL_S
        self.status.state(self.listening())

    async def receive(self) -> None:
        async for message in self.socket:
            self.last_event = time.monotonic()
            if isinstance(message, bytes):
                self.on_audio(message)
            else:
                await self.on_event(json.loads(message))

    def on_audio(self, pcm16: bytes) -> None:
        if not self.first_audio:
            self.first_audio = True
            self.status.say(f"  first audio byte {self._since(self.reply_mark)}")
            if isinstance(self.sink, Speaker):
                self._spawn(self._report_played(self.sink, self.reply_mark))
        self.sink.push(pcm16)

    async def _report_played(self, speaker: Speaker, mark: tuple[float, str]) -> None:
        deadline = time.monotonic() + PLAYED_WAIT_S
        while speaker.first_played is None and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        if speaker.first_played is not None:
            played_ms = (speaker.first_played - mark[0]) * 1000
            self.status.say(f"  first audio played {played_ms:.0f} ms after {mark[1]}")

    async def on_event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "speech_start":
            self.sink.stop()  # barge-in: the user talks over the reply
            self.status.state("hearing you")
        elif kind == "transcript" and event.get("final"):
            self.status.say(f"you: {event.get('text', '')}")
            self.status.state("thinking")
        elif kind == "no_speech":
            self.status.say("(no words heard)")
            self.status.state(self.listening())
        elif kind == "reply":
            self.on_reply(event)
        elif kind == "audio_start":
            self.speaking = True
            self.sink.begin(int(event["sample_rate"]))
            self.status.state("speaking")
        elif kind == "audio_end":
            self.speaking = False
            if event.get("interrupted"):
                self.sink.stop()
                self.status.say("  (reply interrupted)")
            self.status.state(self.listening())
        elif kind == "error":
            self.errors += 1
            self.status.say(f"error from the server: {event.get('message')}", sys.stderr)

    def on_reply(self, event: dict[str, Any]) -> None:
        self.replies += 1
        self.checking = False
        self.first_audio = False
        self.status.say(f"assistant: {event.get('reply', '')}")
        timings = event.get("timings") or {}
        if timings:
            shown = ", ".join(f"{name.removesuffix('_ms')} {ms}" for name, ms in timings.items())
            self.status.say(f"  server timings (ms): {shown}")
        self.reply_mark = self.mark
        self.status.say(f"  reply {self._since(self.mark)}")
        if (event.get("data") or {}).get("require_password"):
            self.asking = True  # asked aside, so that the question's audio plays meanwhile
            self._spawn(self.ask_password())

    async def ask_password(self) -> None:
        self.status.paused = True
        self.status.clear()
        if self.keys:
            self.keys.pause()
        try:
            password = await asyncio.to_thread(read_password, "Password", self.password_env)
        finally:
            if self.keys:
                self.keys.resume()
            self.status.paused = False
        if password:
            await self.socket.send(json.dumps({"type": "password", "password": password}))
            self.mark = (time.monotonic(), "the password")
            self.checking = True
        else:
            self.status.say("No password given: the transfer is not confirmed.")
        self.asking = False
        self.last_event = time.monotonic()

    def _spawn(self, work: Any) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    def _since(mark: tuple[float, str]) -> str:
        instant, name = mark
        return f"{(time.monotonic() - instant) * 1000:.0f} ms after {name}"

    def finished(self) -> bool:
        """A file run is over: answered, nothing playing or pending, and quiet for a while."""
        quiet = time.monotonic() - self.last_event >= QUIET_S
        busy = self.speaking or self.asking or self.checking
        return self.replies > 0 and not busy and quiet


async def converse(args: argparse.Namespace) -> int:
    if args.list_devices:
        print(device_list(load_sounddevice()))
        return 0
    if args.push_to_talk and (args.input_wav or not sys.stdin.isatty()):
        raise CannotStart("--push-to-talk reads the space bar: run it at a terminal, no file")
    need_input, need_output = args.input_wav is None, args.output_wav is None
    devices = load_sounddevice() if need_input or need_output else None
    input_device = (
        pick_device(devices, "input", args.input_device) if devices and need_input else None
    )
    output_device = (
        pick_device(devices, "output", args.output_device) if devices and need_output else None
    )
    frames = None if need_input else wav_frames(args.input_wav)
    token = args.token
    if args.email:
        password = read_password(f"Password for {args.email}", args.password_env)
        token = await asyncio.to_thread(login, args.url, args.email, password)
    status = StatusLine()
    sink: Speaker | WavRecorder = (
        Speaker(devices, output_device) if devices and need_output else WavRecorder(args.output_wav)
    )
    try:
        async with connect(voice_url(args.url, args.user_id, token), max_size=None) as socket:
            ready = json.loads(await socket.recv())
            if ready.get("type") != "ready":
                raise Refused(
                    f"the server refused the connection: {ready.get('message')} "
                    "(log in with --email, or pass a new --token)"
                )
            print(f"connected to {args.url} (session {ready.get('session_id')})", flush=True)
            client = Client(socket, sink, args.password_env, status)
            receiving = asyncio.create_task(client.receive())
            if frames is not None:
                await client.send_file(frames)
                return await _wait_for_replies(client, receiving, args.timeout)
            assert devices is not None  # no --input-wav: the microphone is wanted
            return await _listen(client, receiving, Microphone(devices, input_device), args)
    except (OSError, InvalidURI, InvalidHandshake) as error:
        print(f"cannot connect to {args.url}: {error}", file=sys.stderr)
        return 1
    except ConnectionClosed as closed:
        status.say(f"the server closed the connection ({closed})", sys.stderr)
        return 1
    finally:
        status.clear()
        sink.close()


async def _listen(
    client: Client, receiving: asyncio.Task[None], microphone: Microphone, args: Any
) -> int:
    """The open microphone (or push-to-talk) until Ctrl-C or the server hangs up."""
    if args.push_to_talk:
        client.keys = SpaceBar(client.push_to_talk)
    client.status.say("Ctrl-C quits" + (", space starts and stops talking" if client.keys else ""))
    client.status.state(client.listening())
    sending = asyncio.create_task(client.send_microphone(microphone))
    try:
        done, _ = await asyncio.wait([sending, receiving], return_when=asyncio.FIRST_COMPLETED)
    finally:
        sending.cancel()
        if client.keys:
            client.keys.close()
    for task in done:
        task.result()  # a microphone failure or an abnormal close raises here
    client.status.say("the server closed the connection", sys.stderr)
    return 1


async def _wait_for_replies(client: Client, receiving: asyncio.Task[None], timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while not client.finished():
        if receiving.done():
            receiving.result()  # raises ConnectionClosed if the server hung up
            print("the server closed the connection", file=sys.stderr)
            return 1
        if time.monotonic() > deadline and not client.asking:
            print(f"no reply within {timeout:.0f} s", file=sys.stderr)
            return 1
        await asyncio.sleep(0.1)
    await client.sink.drain()
    receiving.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await receiving
    return 1 if client.errors else 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m voice.mic_client", description="Talk to the assistant over /ws/voice."
    )
    parser.add_argument("--url", default="ws://127.0.0.1:8000/ws/voice")
    who = parser.add_mutually_exclusive_group()
    who.add_argument("--token", help="an access token of /api/auth/login")
    who.add_argument("--email", help="log in as this user (the password is asked, hidden)")
    parser.add_argument(
        "--user-id", type=int, help="demo mode without a token: whom to act for (default 1)"
    )
    parser.add_argument("--input-wav", type=Path, help="send this WAV file instead of the mic")
    parser.add_argument("--output-wav", type=Path, help="write the replies' audio here")
    parser.add_argument("--list-devices", action="store_true", help="list the audio devices")
    parser.add_argument("--input-device", help="microphone: index or part of its name")
    parser.add_argument("--output-device", help="speaker: index or part of its name")
    parser.add_argument(
        "--push-to-talk", action="store_true", help="send the microphone only after space"
    )
    parser.add_argument(
        "--password-env", metavar="VAR", help="take the password(s) from this variable"
    )
    parser.add_argument(
        "--timeout", type=float, default=60.0, help="seconds to wait for a reply (file runs)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return asyncio.run(converse(args))
    except CannotStart as error:
        print(f"mic_client: {error}", file=sys.stderr)
        return 2
    except ConnectionError as error:  # the login request found no server
        print(f"mic_client: {error}", file=sys.stderr)
        return 1
    except Refused as error:
        print(f"mic_client: {error}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
