"""authority_service.users: the store (SQLite and PostgreSQL), argon2id hashing, token generation
on changes."""

from __future__ import annotations

import pytest

from authority_service.errors import ConflictError, InvalidRequestError, NotFoundError
from authority_service.users import PasswordPolicy, Role, SqlUserStore, check_user_name


@pytest.fixture
def store(database) -> SqlUserStore:
    return SqlUserStore(database)


@pytest.fixture(scope="module")
def policy() -> PasswordPolicy:
    return PasswordPolicy(min_length=12, time_cost=1, memory_kib=8192, parallelism=1)


def test_add_get_list_and_duplicate(store, policy):
    store.add("ivy", Role.investigator, policy.hash("a long enough password"))
    store.add("audrey", Role.auditor, policy.hash("another long password"))
    assert [u.name for u in store.list()] == ["audrey", "ivy"]
    assert store.get("ivy").role is Role.investigator and store.count() == 2
    assert store.get("nobody") is None
    with pytest.raises(ConflictError, match="already exists"):
        store.add("ivy", Role.admin, policy.hash("a long enough password"))


def test_password_hash_is_argon2id_and_verifies(store, policy):
    user = store.add("ivy", Role.investigator, policy.hash("a long enough password"))
    assert user.password_hash.startswith("$argon2id$")
    assert "a long enough password" not in user.password_hash
    assert policy.verify(user, "a long enough password")
    assert not policy.verify(user, "a long enough passwore")
    assert not policy.verify(None, "a long enough password")  # unknown user: same cost, False


def test_password_policy_refuses_short(policy):
    with pytest.raises(InvalidRequestError, match="at least 12"):
        policy.hash("short")


@pytest.mark.parametrize("name", ["", "Ivy", "-ivy", "a b", "x" * 65, "ivy;drop"])
def test_check_user_name_refuses_bad_names(name):
    with pytest.raises(InvalidRequestError):
        check_user_name(name)


def test_update_changes_revoke_tokens_and_unknown_user_raises(store, policy):
    user = store.add("ivy", Role.investigator, policy.hash("a long enough password"))
    assert user.token_generation == 0
    same = store.update("ivy", role=Role.investigator)
    assert same.token_generation == 0  # nothing changed: tokens stay valid
    moved = store.update("ivy", role=Role.auditor)
    assert moved.role is Role.auditor and moved.token_generation == 1
    disabled = store.update("ivy", disabled=True)
    assert disabled.disabled and disabled.token_generation == 2
    with pytest.raises(NotFoundError):
        store.update("nobody", disabled=True)


def test_the_last_enabled_admin_cannot_be_demoted_or_disabled(store, policy):
    password = policy.hash("a long enough password")
    store.add("adam", Role.admin, password)
    store.add("alma", Role.admin, password)
    store.update("alma", disabled=True)  # one enabled admin (adam) remains
    for change in ({"role": Role.auditor}, {"disabled": True}):
        with pytest.raises(ConflictError) as info:
            store.update("adam", **change)
        assert info.value.code == "last_admin"
    assert store.get("adam").role is Role.admin and not store.get("adam").disabled
    store.update("alma", disabled=False)
    assert store.update("adam", role=Role.auditor).role is Role.auditor  # alma is left
    new_password = policy.hash("another long password")
    assert store.update("alma", password_hash=new_password).role is Role.admin  # not refused
