"""The public surface is a tested fact (as in httpx's tests/test_exported_members.py).

Every public name in the ``aiosms`` namespace is in ``__all__`` and vice versa, leaving
out modules (``contextlib``, used by ``__init__``, and subpackages such as
``aiosms.testing`` that become attributes once imported). Every exported class and
function says ``aiosms`` as its module, so tracebacks read ``aiosms.MySms``. The same
holds for the blocking API, ``aiosms.sync``, which ``import aiosms`` brings along.
"""

from __future__ import annotations

import inspect
import types

import aiosms


def _public_names(module: types.ModuleType = aiosms) -> list[str]:
    return sorted(
        name
        for name, value in vars(module).items()
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


def test_the_blocking_api_is_a_submodule_reachable_after_import_aiosms() -> None:
    assert isinstance(aiosms.sync, types.ModuleType)
    assert aiosms.sync.__name__ == "aiosms.sync"
    assert "sync" not in aiosms.__all__


def test_the_blocking_apis_all_lists_exactly_its_public_names() -> None:
    assert sorted(aiosms.sync.__all__) == _public_names(aiosms.sync)
    assert set(aiosms.sync.__all__) == {"Batcher", "Campaign", "MySms", "ThousandSms"}


def test_every_class_of_the_blocking_api_says_aiosms_sync_as_its_module() -> None:
    for name in aiosms.sync.__all__:
        cls = getattr(aiosms.sync, name)
        assert inspect.isclass(cls)
        assert cls.__module__ == "aiosms.sync", cls


def test_the_blocking_clients_have_every_public_method_of_the_async_ones() -> None:
    pairs = [
        (aiosms.MySms, aiosms.sync.MySms),
        (aiosms.ThousandSms, aiosms.sync.ThousandSms),
        (aiosms.Batcher, aiosms.sync.Batcher),
    ]
    for async_class, sync_class in pairs:
        public = {n for n in dir(async_class) if not n.startswith("_")} - {"aclose", "client"}
        missing = {n for n in public if not hasattr(sync_class, n)}
        assert missing == set(), (sync_class, missing)


def test_the_blocking_classes_take_the_async_ones_options_and_arguments() -> None:
    pairs = [
        (aiosms.MySms, aiosms.sync.MySms),
        (aiosms.ThousandSms, aiosms.sync.ThousandSms),
        (aiosms.Batcher, aiosms.sync.Batcher),
    ]
    for async_class, sync_class in pairs:
        names = ["__init__"] + [n for n in dir(async_class) if not n.startswith("_")]
        for name in names:
            async_member = getattr(async_class, name)
            if not callable(async_member) or name == "aclose":
                continue
            expected = inspect.signature(async_member).parameters
            actual = inspect.signature(getattr(sync_class, name)).parameters
            extra = {"backend", "backend_options"} if name == "__init__" else set()
            assert [p for p in actual if p not in extra] == list(expected), (sync_class, name)
            for parameter in expected.values():
                assert actual[parameter.name].default == parameter.default, (name, parameter)
