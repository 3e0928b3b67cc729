"""A Rasa server for every server process to share (`rasa.url`), in the foreground:

    .venv/bin/python -m nlu.rasa_serve [--host 127.0.0.1] [--port 5005]    # make rasa-server

It serves the current trained model (`make rasa-model`) from Rasa's own environment, as the
managed child does, but is nobody's child: it runs until stopped. Its token is
BANKBOT_RASA__TOKEN, the variable the servers read to call it; set one whenever anyone
but you can reach the port (`--enable-api` also offers training and model replacement).
"""

import argparse
import os
import sys

from nlu.rasa_launch import PARENT_PID_VARIABLE
from nlu.rasa_launch import TOKEN_VARIABLE as LAUNCH_TOKEN_VARIABLE
from nlu.rasa_train import RASA_HOME, RasaSetupError, rasa_command, rasa_environment, trained_model

TOKEN_VARIABLE = "BANKBOT_RASA__TOKEN"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Serve Rasa NLU for several server processes.")
    parser.add_argument("--host", default="127.0.0.1", help="address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=5005, help="port (default 5005)")
    args = parser.parse_args(argv)
    try:
        command = rasa_command("run", "--enable-api", "-i", args.host, "-p", str(args.port))
        command += ["-m", str(trained_model())]
    except RasaSetupError as error:
        sys.exit(f"rasa_serve: {error}")
    environment = rasa_environment()
    # The launcher hands the token to Rasa by environment: `ps` shows every user arguments.
    environment[LAUNCH_TOKEN_VARIABLE] = os.environ.get(TOKEN_VARIABLE, "")
    del environment[PARENT_PID_VARIABLE]  # it outlives whoever started it
    RASA_HOME.mkdir(parents=True, exist_ok=True)
    os.chdir(RASA_HOME)
    os.execve(command[0], command, environment)


if __name__ == "__main__":
    main()
