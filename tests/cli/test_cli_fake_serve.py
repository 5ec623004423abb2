"""`aiosms fake serve` as a real process: serves on a free port, stops cleanly on SIGTERM."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_fake_serve_answers_http_and_exits_0_on_sigterm() -> None:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from aiosms.cli import main; main()",
            "--output",
            "json",
            "fake",
            "serve",
            "--port",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        info = json.loads(line)
        assert info["base_url"] == f"http://127.0.0.1:{port}/rest/sms/"
        body = {"auth": {"username": info["username"], "password": info["password"]}}
        deadline = time.monotonic() + 10
        reply = httpx.post(info["base_url"] + "credit/json", json=body, timeout=5)
        assert time.monotonic() < deadline
        assert reply.status_code == 200
        assert "1000" in reply.text
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=10)
        assert process.returncode == 0, stderr
        assert "SIGTERM" in stderr
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)


def test_fake_serve_with_chaos_makes_some_requests_fail() -> None:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from aiosms.cli import main; main()",
            "--output",
            "json",
            "fake",
            "serve",
            "--gateway",
            "1000sms",
            "--port",
            str(port),
            "--chaos",
            "1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        info = json.loads(process.stdout.readline())
        assert info["email"] == "test@example.com"
        failures = 0
        args = {"method": "get_profile", "email": info["email"], "password": info["password"]}
        with httpx.Client(timeout=5) as client:
            for _ in range(5):
                try:
                    reply = client.post(info["base_url"], data=args)
                    failures += reply.status_code != 200 or '"code": 0' not in reply.text
                except httpx.HTTPError:
                    failures += 1
        assert failures == 5
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=10)
        assert process.returncode == 0, stderr
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)
