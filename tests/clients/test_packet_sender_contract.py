"""``PacketSender`` is the whole of what code above the clients uses of a client.

The modules that drive a client (``send_many``, the Batcher and its tracking,
campaigns) are read from their source: every attribute they touch on a client must
be a member the protocol names, and both gateway clients must have every member.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import aiosms
from aiosms.testing import FakeMySms, FakeThousandSms

PACKAGE = Path(aiosms.__file__).parent
#: The modules that drive a client from above, where a client is called ``client``
#: (a parameter) or ``self.client`` (the Batcher's).
DRIVERS = sorted(
    [
        PACKAGE / "_many.py",
        *(PACKAGE / "_batching").glob("*.py"),
        *(PACKAGE / "campaigns").glob("*.py"),
    ]
)


def protocol_members() -> set[str]:
    tree = ast.parse((PACKAGE / "_gateway.py").read_text(encoding="utf-8"))
    (protocol,) = [
        node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == "PacketSender"
    ]
    return {
        node.name
        for node in protocol.body
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
    }


def is_client(node: ast.expr) -> bool:
    if isinstance(node, ast.Name):
        return node.id == "client"
    return (
        isinstance(node, ast.Attribute)
        and node.attr == "client"
        and isinstance(node.value, ast.Name)
        and node.value.id == "self"
    )


def used_on_clients(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and is_client(node.value)
    }


def test_the_protocol_names_what_the_batcher_send_many_and_campaigns_use() -> None:
    members = protocol_members()
    used = {path.relative_to(PACKAGE).as_posix(): used_on_clients(path) for path in DRIVERS}
    unnamed = {f"{module}: {attr}" for module, attrs in used.items() for attr in attrs - members}
    assert unnamed == set()
    # The reading itself works: the drivers are seen using the packet entry point.
    assert "_send_packet" in used["_many.py"]
    assert "status_many" in used["_batching/_track.py"]


@pytest.mark.parametrize("fake", [FakeMySms, FakeThousandSms], ids=["mysms", "thousandsms"])
def test_both_clients_have_every_member_of_the_protocol(
    fake: type[FakeMySms] | type[FakeThousandSms],
) -> None:
    client = fake().client()
    missing = {name for name in protocol_members() if not hasattr(client, name)}
    assert missing == set()
    assert len(protocol_members()) >= 10
