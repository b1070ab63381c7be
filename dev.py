#!/usr/bin/env python3
"""The two commands of the README, on any machine with Python 3.11+ and nothing else:

    python3 dev.py serve   installs into .venv, migrates, loads the demo chain, serves on :8000
    python3 dev.py test    installs into .venv and runs the whole test suite

and `python3 dev.py check` (ruff, mypy, schema drift) for contributors. Extra arguments go to
`ropos serve` or pytest. Only the standard library is used here.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / ("python.exe" if os.name == "nt" else "python")
STAMP = VENV / ".ropos-install"
INPUTS = ("pyproject.toml", "requirements.lock")


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
    say("installing dependencies (pinned in requirements.lock)")
    run(PYTHON, "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    run(PYTHON, "-m", "pip", "install", "--quiet", "-c", "requirements.lock", "-e", ".[dev]")
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
    say(f"GraphiQL at http://{host}:{port}/graphql (Ctrl+C stops)")
    os.execv(str(ropos), [str(ropos), "serve", *extra])


def test(extra: list[str]) -> None:
    install()
    run(PYTHON, "-m", "pytest", *extra)


def check(extra: list[str]) -> None:
    install()
    run(BIN / "ruff", "check", ".")
    run(BIN / "ruff", "format", "--check", ".")
    run(BIN / "mypy")


COMMANDS = {"serve": serve, "test": test, "check": check}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in COMMANDS:
        sys.exit(__doc__)
    COMMANDS[sys.argv[1]](sys.argv[2:])
