"""Where the command finds a login and a password, never on the command line.

Passwords come, first found wins, from ``--password-stdin``, ``--password-file``,
``AIOSMS_<GATEWAY>_PASSWORD_FILE``, ``AIOSMS_<GATEWAY>_PASSWORD`` (less safe: the
environment of a process can be read by its owner's other processes and ends up in
crash reports), or the profile file. The profile is an INI file (configparser: no
extra dependency on Python 3.10) that must be readable by its owner only. No message
built here ever holds a password.
"""

from __future__ import annotations

import configparser
import os
import stat
import sys
from pathlib import Path

import attrs
import click

from aiosms.cli._settings import Settings, config_dir

__all__ = [
    "ConfigError",
    "Credentials",
    "profile_path",
    "read_profile",
    "resolve_credentials",
    "write_profile",
]

_ENV_PREFIX = {"mysms": "AIOSMS_MYSMS", "1000sms": "AIOSMS_1000SMS"}
_LOGIN = {"mysms": "username", "1000sms": "email"}


class ConfigError(click.ClickException):
    """The command cannot start: missing or unsafe configuration. Exit code 1."""

    exit_code = 1


@attrs.frozen(slots=True, repr=False)
class Credentials:
    """A login and its password; the repr never shows the password."""

    login: str
    password: str

    def __repr__(self) -> str:
        return f"Credentials(login={self.login!r}, password='***')"


def profile_path() -> Path:
    """``$AIOSMS_PROFILE`` if set, else ``$XDG_CONFIG_HOME/aiosms/profile.ini``."""
    explicit = os.environ.get("AIOSMS_PROFILE")
    return Path(explicit) if explicit else config_dir() / "profile.ini"


def read_profile(path: Path | None = None) -> configparser.ConfigParser:
    """The profile file's sections (empty if there is none); refuses a file others can read."""
    path = path or profile_path()
    parser = configparser.ConfigParser(interpolation=None)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return parser
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"{path} is readable or writable by other users; it holds a password. "
            f"Run: chmod 600 {path}"
        )
    with path.open(encoding="utf-8") as handle:
        parser.read_file(handle)
    return parser


def write_profile(gateway: str, login: str, password: str, *, path: Path | None = None) -> Path:
    """Store ``gateway``'s login and password in the profile file, created with mode 0600."""
    path = path or profile_path()
    parser = read_profile(path)
    if not parser.has_section(gateway):
        parser.add_section(gateway)
    parser.set(gateway, _LOGIN[gateway], login)
    parser.set(gateway, "password", password)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # Created 0600 before a byte is written, so the password is never readable by others.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.chmod(path, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        parser.write(handle)
    return path


def _read_password_file(path: Path, source: str) -> str:
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        # The reason (not found, denied) and the path, never the content.
        raise ConfigError(
            f"cannot read the password file given by {source}: {path}: {error.strerror}"
        ) from None
    if stat.S_ISREG(mode) and mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"{path} (from {source}) is readable or writable by other users; "
            f"it holds a password. Run: chmod 600 {path}"
        )
    return _first_line(text, source)


def _first_line(text: str, source: str) -> str:
    password = text.splitlines()[0] if text else ""
    if not password:
        raise ConfigError(f"the password from {source} is empty")
    return password


def resolve_credentials(settings: Settings) -> Credentials:
    """The login and password for ``settings.gateway`` (a real gateway, not the fake)."""
    gateway = settings.gateway
    prefix = _ENV_PREFIX[gateway]
    login_name = _LOGIN[gateway]
    login = settings.username if gateway == "mysms" else settings.email
    password: str | None = None
    if settings.password_stdin:
        password = _first_line(sys.stdin.read(), "--password-stdin")
    elif settings.password_file is not None:
        password = _read_password_file(settings.password_file, "--password-file")
    elif os.environ.get(f"{prefix}_PASSWORD_FILE"):
        password = _read_password_file(
            Path(os.environ[f"{prefix}_PASSWORD_FILE"]), f"{prefix}_PASSWORD_FILE"
        )
    elif os.environ.get(f"{prefix}_PASSWORD"):
        password = os.environ[f"{prefix}_PASSWORD"]
    if login is None or password is None:
        profile = read_profile()
        if profile.has_section(gateway):
            login = login or profile.get(gateway, login_name, fallback=None)
            if password is None:
                password = profile.get(gateway, "password", fallback=None)
    option = "--username" if gateway == "mysms" else "--email"
    if not login:
        raise ConfigError(
            f"no {login_name} for {gateway}: give {option}, set {prefix}_{login_name.upper()}, "
            f"or run 'aiosms credentials save'"
        )
    if not password:
        raise ConfigError(
            f"no password for {gateway}: use --password-file PATH, --password-stdin, "
            f"{prefix}_PASSWORD_FILE, or run 'aiosms credentials save'"
        )
    return Credentials(login, password)
