"""The bank's admin commands, run against the configured database:

    python -m banking.admin grant-role EMAIL ROLE    # customer, agent or admin
    python -m banking.admin add-phone EMAIL NUMBER   # +country code: calls from it are EMAIL's
    python -m banking.admin set-pin EMAIL            # typed twice, never an argument

The database is config.yaml's (or `--config FILE` / BANKBOT_CONFIG's), as overridden by
BANKBOT_DATABASE_URL or DATABASE_URL (banking/config.py). `server.py --grant-role` and
its siblings forward here.
"""

import argparse
import getpass
import os
import sys
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from banking.config import ConfigError, anchor_sqlite_path, config_path, read_config
from banking.db import make_engine
from banking.phones import InvalidPhoneNumber, InvalidPin, Phones, normal_number
from banking.users import ROLES, UnknownUser, Users, normal_email

PROG = "python -m banking.admin"
PROJECT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = PROJECT / "config.yaml"


def grant_role(engine: Engine, email: str, role: str) -> None:
    """Give a registered user a role; ConfigError says what is wrong."""
    if role not in ROLES:
        raise ConfigError(f"the role must be one of {', '.join(ROLES)}")
    try:
        profile = Users(engine).grant(email, role)
    except UnknownUser as error:
        raise ConfigError(f"no user registered with the email {email}") from error
    print(f"{profile.email} is now {profile.role}")


def add_phone(engine: Engine, email: str, number: str) -> None:
    """Calls from the number are the user's; ConfigError says what is wrong."""
    try:
        user_id = Users(engine).by_email(email).user_id
        Phones(engine).add_number(user_id, number)
    except UnknownUser as error:
        raise ConfigError(f"no user registered with the email {email}") from error
    except InvalidPhoneNumber as error:
        raise ConfigError(f"{error}; write it with + and the country code") from error
    except IntegrityError as error:
        raise ConfigError("that number is registered already") from error
    print(f"calls from {normal_number(number)} are now {normal_email(email)}'s")


def set_pin(engine: Engine, email: str) -> None:
    """The user's keypad PIN, typed twice at the terminal (or two lines on stdin), never
    given as an argument, which shell histories keep."""
    try:
        user_id = Users(engine).by_email(email).user_id
        pin = _read_secret("New PIN (4 to 8 digits): ")
        if _read_secret("The PIN again: ") != pin:
            raise ConfigError("the two PINs differ; nothing was changed")
        Phones(engine).set_pin(user_id, pin)
    except UnknownUser as error:
        raise ConfigError(f"no user registered with the email {email}") from error
    except InvalidPin as error:
        raise ConfigError("a PIN is 4 to 8 digits; nothing was changed") from error
    print(f"{normal_email(email)} has a new PIN")


def _read_secret(prompt: str) -> str:
    if sys.stdin.isatty():
        return getpass.getpass(prompt)
    return sys.stdin.readline().strip()


def database_url(config_file: Path | None = None) -> str:
    """The configured database, a relative SQLite path taken from the project."""
    values = read_config(config_path(config_file, DEFAULT_CONFIG, os.environ))
    url = values.get("database_url")
    if not isinstance(url, str) or not url:
        raise ConfigError("the settings name no database_url")
    return anchor_sqlite_path(url, PROJECT)


def parser() -> argparse.ArgumentParser:
    commands = argparse.ArgumentParser(
        prog=PROG, description="Change a registered user of the bank."
    )
    commands.add_argument("--config", type=Path, help="settings file (default: config.yaml)")
    which = commands.add_subparsers(dest="command", required=True)
    grant = which.add_parser("grant-role", help=f"give a user a role ({', '.join(ROLES)})")
    grant.add_argument("email")
    grant.add_argument("role")
    phone = which.add_parser("add-phone", help="register a telephone number (+country code)")
    phone.add_argument("email")
    phone.add_argument("number")
    pin = which.add_parser("set-pin", help="set a telephone PIN (typed twice, not echoed)")
    pin.add_argument("email")
    return commands


# server.py's flags for the same commands (kept so that older scripts work), forwarded here.
SERVER_FLAGS = {
    "--grant-role": ("EMAIL", "ROLE"),
    "--add-phone": ("EMAIL", "NUMBER"),
    "--set-pin": ("EMAIL",),
}


def add_server_flags(server: argparse.ArgumentParser) -> None:
    for flag, names in SERVER_FLAGS.items():
        server.add_argument(flag, nargs=len(names), metavar=names, help=f"{PROG} {flag[2:]}")


def forward_server_flags(args: argparse.Namespace) -> bool:
    """Run the command one of SERVER_FLAGS names, if any (exits on an error); whether it ran."""
    for flag in SERVER_FLAGS:
        given: list[str] | None = getattr(args, flag[2:].replace("-", "_"))
        if given:
            config = ["--config", str(args.config)] if args.config else []
            main([*config, flag[2:], *given])
            return True
    return False


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    try:
        engine = make_engine(database_url(args.config))
        try:
            if args.command == "grant-role":
                grant_role(engine, args.email, args.role)
            elif args.command == "add-phone":
                add_phone(engine, args.email, args.number)
            else:
                set_pin(engine, args.email)
        finally:
            engine.dispose()
    except ConfigError as error:
        sys.exit(f"bankbot: {error}")


if __name__ == "__main__":
    main()
