#!/usr/bin/env python3
"""The two commands of the README, on any machine with Python 3.11+ and nothing else:

    python3 dev.py serve   installs into .venv, migrates, loads the demo chain, serves on :8000
    python3 dev.py test    installs into .venv and runs the whole test suite

and for contributors `python3 dev.py check` (ruff, mypy, schema drift) and `python3 dev.py lock`
(regenerates requirements.lock and requirements-dev.lock from pyproject.toml). Extra arguments go
to `ropos serve`, pytest or `uv pip compile`. Only the standard library is used here.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")
STAMP = VENV / ".ropos-install"
INPUTS = ("pyproject.toml", "requirements.lock", "requirements-dev.lock")


def say(message: str) -> None:
    print(f"dev.py: {message}", flush=True)


def run(*args: str | os.PathLike[str], env: dict[str, str] | None = None) -> None:
    result = subprocess.run([str(a) for a in args], cwd=ROOT, env=env)
    if result.returncode:
        sys.exit(result.returncode)


def install() -> None:
    """Make .venv and install the project with its pinned dependencies, unless already done."""
    if sys.version_info < (3, 11):  # noqa: UP036 (dev.py runs on whatever python3 a newcomer has)
        sys.exit("ROPOS needs Python 3.11 or newer; this is " + sys.version.split()[0])
    digest = hashlib.sha256(b"".join((ROOT / name).read_bytes() for name in INPUTS)).hexdigest()
    if STAMP.exists() and STAMP.read_text() == digest and PYTHON.exists():
        return
    if not PYTHON.exists():
        say("creating .venv")
        venv.EnvBuilder(with_pip=True).create(VENV)
    say("installing dependencies (requirements-dev.lock, every file checked against its hash)")
    # The lock pins pip and setuptools too: pip replaces itself first, and the project is then
    # built with the locked setuptools (no build isolation, so nothing unpinned is downloaded).
    run(
        PYTHON, "-m", "pip", "install", "--quiet", "--require-hashes", "-r", "requirements-dev.lock"
    )
    say("installing ropos itself (editable)")
    run(PYTHON, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "-e", ".")
    STAMP.write_text(digest)


def serve(extra: list[str]) -> None:
    install()
    ropos = BIN / "ropos"
    run(ropos, "migrate")
    run(ropos, "seed", "--demo")
    say("tokens to try in GraphiQL (header  Authorization: Bearer <token>):")
    for args in (
        ("--role", "customer", "--sub", "alice"),
        ("--role", "pos", "--store", "S001"),
        ("--role", "ops"),
    ):
        token = subprocess.run(
            [str(ropos), "token", *args], cwd=ROOT, capture_output=True, text=True
        )
        print(f"  {' '.join(args):32} {token.stdout.strip()}")
    host = extra[extra.index("--host") + 1] if "--host" in extra[:-1] else "127.0.0.1"
    port = extra[extra.index("--port") + 1] if "--port" in extra[:-1] else "8000"
    say(
        f"GraphiQL at http://{host}:{port}/graphql, the consoles at /shop, /pos, /ops (Ctrl+C stops)"
    )
    os.execv(str(ropos), [str(ropos), "serve", *extra])


def test(extra: list[str]) -> None:
    install()
    run(PYTHON, "-m", "pytest", *extra)


def check(extra: list[str]) -> None:
    install()
    # The Dockerfile pins pip and setuptools by version (it installs them before any lock is in the
    # image); they must be the ones requirements-dev.lock pins, which dev.py installs.
    locked = (ROOT / "requirements-dev.lock").read_text()
    dockerfile = (ROOT / "Dockerfile").read_text()
    for name, version in re.findall(r"^(pip|setuptools)==(\S+)", locked, re.MULTILINE):
        if not re.search(rf"\b{name}=={re.escape(version)}\s", dockerfile):
            sys.exit(
                f"dev.py: the Dockerfile must install {name}=={version}, as requirements-dev.lock"
            )
    run(BIN / "ruff", "check", ".")
    run(BIN / "ruff", "format", "--check", ".")
    run(BIN / "mypy")


# How both locks are made, quoted at the top of each. One universal resolution per lock (every
# platform's wheels, with their markers, for Python 3.11 and newer); the dev lock is constrained by
# the runtime lock, so a package in both has the same version in both. --no-config: a contributor's
# own uv settings (another index, say) stay out of it. uv keeps the versions already in a lock
# unless told otherwise: `python3 dev.py lock --upgrade-package NAME` moves one.
UV_COMPILE = (
    "uv pip compile --no-config pyproject.toml --universal --python-version 3.11 --generate-hashes"
)
LOCKS = {
    "requirements.lock": "",
    "requirements-dev.lock": " --extra test --extra sim --extra dev -c requirements.lock",
}
REFRESH = "# Refresh both locks with `python3 dev.py lock` (uv from .venv); for this one it runs:\n"


def lock(extra: list[str]) -> None:
    install()  # uv itself is pinned in requirements-dev.lock
    for output, options in LOCKS.items():
        command = f"{UV_COMPILE}{options} -o {output}"
        say(command)
        run(
            BIN / "uv", *command.split()[1:], "--quiet", "--custom-compile-command", command, *extra
        )
        path = ROOT / output
        path.write_text(REFRESH + path.read_text())
    say("done: the next dev.py command installs from them")


COMMANDS = {"serve": serve, "test": test, "check": check, "lock": lock}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        sys.exit(__doc__)
    COMMANDS[sys.argv[1]](sys.argv[2:])
