"""The public surface is a tested fact (as in httpx's tests/test_exported_members.py).

Every public name in the ``aiosms`` namespace is in ``__all__`` and vice versa, leaving
out modules (``contextlib``, used by ``__init__``, and subpackages such as
``aiosms.testing`` that become attributes once imported). Every exported class and
function says ``aiosms`` as its module, so tracebacks read ``aiosms.MySms``.
"""

from __future__ import annotations

import inspect
import types

import aiosms


def _public_names() -> list[str]:
    return sorted(
        name
        for name, value in vars(aiosms).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    )


def test_all_lists_exactly_the_public_names_of_the_package() -> None:
    assert sorted(aiosms.__all__) == _public_names()


def test_all_has_no_duplicates() -> None:
    assert len(aiosms.__all__) == len(set(aiosms.__all__))


def test_every_name_in_all_can_be_imported() -> None:
    for name in aiosms.__all__:
        assert getattr(aiosms, name, None) is not None, name


def test_every_exported_class_says_aiosms_as_its_module() -> None:
    classes = [getattr(aiosms, name) for name in aiosms.__all__]
    classes = [obj for obj in classes if inspect.isclass(obj)]
    assert classes
    for cls in classes:
        assert cls.__module__ == "aiosms", cls


def test_every_exported_function_says_aiosms_as_its_module() -> None:
    functions = [getattr(aiosms, name) for name in aiosms.__all__]
    functions = [obj for obj in functions if inspect.isfunction(obj)]
    assert functions
    for function in functions:
        assert function.__module__ == "aiosms", function


def test_the_contract_names_of_the_design_are_exported() -> None:
    contract = {
        "MySms",
        "Message",
        "Receipt",
        "StatusReport",
        "Balance",
        "Profile",
        "DeliveryState",
        "SmsError",
        "ValidationError",
        "TransportError",
        "DeliveryUnknownError",
        "ProtocolError",
        "ProviderError",
        "AuthenticationError",
        "AccountError",
        "InsufficientFundsError",
        "RecipientError",
        "BlacklistedError",
        "SenderError",
        "ContentError",
        "MessageNotFoundError",
        "ScheduleError",
        "RequestError",
        "GatewayError",
    }
    assert contract <= set(aiosms.__all__)
