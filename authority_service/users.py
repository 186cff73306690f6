"""Local users: roles, argon2id password hashes, and the store behind a small interface.

:class:`UserStore` is what the rest of the service uses; :class:`SqlUserStore` keeps them in
the authority's database (SQLite or PostgreSQL, :mod:`.db`). An LDAP-backed store would
implement the same five methods.

Roles are exclusive (separation of duties): an ``investigator`` may reverse faces, an ``auditor``
may read and verify the audit log, an ``admin`` manages users, an ``approver`` approves or
refuses other users' reversals when ``jobs.require_approval`` is on (dual control,
:mod:`authority_service.approvals`; an approver sees no face). No role implies another, and a
user holds exactly one. What that promises, and what it does not:

* an admin cannot change their own role (``self_role_change``, 403, in the HTTP API): no
  signed-in account can hand itself the investigator's or auditor's powers;
* the last active (enabled) admin cannot be demoted or disabled (``last_admin``, 409, here in
  :meth:`SqlUserStore.update`, so through the API and the CLI alike): add another admin
  first. There is no delete; disabling is how an account is retired;
* an admin can still create an investigator account, or set another user's password, and use
  it: separation rests on every such change being in the audit log under the admin's name (the
  auditor's job to review), not on the admin being unable to act. The operating-system operator
  (``uunet-authority user ...``) is the break-glass path, audited as ``os:<login>``;
* dual control binds two *accounts*: the requester of a job can never decide it, whatever role
  they hold later (``self_approval``, 403), but an admin who creates both an investigator and
  an approver account can act as both; the audit log names each account's creator.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Protocol

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from authority_service.db import Database
from authority_service.errors import ConflictError, InvalidRequestError, NotFoundError
from authority_service.schema import users

__all__ = [
    "PASSWORD_MAX",
    "USER_NAME_PATTERN",
    "PasswordPolicy",
    "Role",
    "SqlUserStore",
    "User",
    "UserStore",
    "check_user_name",
]

USER_NAME_PATTERN = r"^[a-z0-9][a-z0-9._@-]{0,63}$"
#: The longest password accepted (argon2 hashes any length; this bounds the work).
PASSWORD_MAX = 1024
_USER_NAME = re.compile(USER_NAME_PATTERN)


class Role(str, enum.Enum):
    """What a user may do."""

    investigator = "investigator"
    auditor = "auditor"
    admin = "admin"
    approver = "approver"


@dataclass(frozen=True)
class User:
    """A stored user (the hash never leaves the store's callers)."""

    name: str
    role: Role
    password_hash: str
    disabled: bool
    token_generation: int
    created_at: str
    updated_at: str


def check_user_name(name: str) -> str:
    """Return ``name`` if it is a valid user name.

    Raises:
        InvalidRequestError: not 1-64 chars of ``a-z 0-9 . _ @ -`` starting with a letter/digit.
    """
    if not isinstance(name, str) or not _USER_NAME.fullmatch(name):
        raise InvalidRequestError(
            f"user name {name!r} must be 1-64 lowercase letters, digits, '.', '_', '@' or '-', "
            "starting with a letter or digit",
            field="name",
        )
    return name


class PasswordPolicy:
    """argon2id hashing and the minimum length, from :class:`~.config.AuthSettings`."""

    def __init__(
        self,
        min_length: int = 12,
        time_cost: int = 3,
        memory_kib: int = 65_536,
        parallelism: int = 4,
    ) -> None:
        self.min_length = min_length
        self.hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism
        )
        # Verified against when the user does not exist, so both paths cost the same time.
        self._dummy_hash = self.hasher.hash("not a password of anyone")

    def check(self, password: str) -> None:
        """Raise :class:`InvalidRequestError` unless ``password`` is acceptable."""
        if not isinstance(password, str) or len(password) < self.min_length:
            raise InvalidRequestError(
                f"password must be at least {self.min_length} characters", field="password"
            )
        if len(password) > PASSWORD_MAX:
            raise InvalidRequestError(
                f"password must be at most {PASSWORD_MAX} characters", field="password"
            )

    def hash(self, password: str) -> str:
        """Check and hash a new password.

        Raises:
            InvalidRequestError: the password breaks the policy.
        """
        self.check(password)
        return self.hasher.hash(password)

    def verify(self, user: User | None, password: str) -> bool:
        """Whether ``password`` is ``user``'s; ``None`` (no such user) costs the same and fails."""
        try:
            return self.hasher.verify(
                user.password_hash if user else self._dummy_hash, password
            ) and (user is not None)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False


class UserStore(Protocol):
    """Where users live. Raises the errors named in each method's docstring."""

    def get(self, name: str) -> User | None:
        """The user called ``name``, or ``None``."""

    def list(self) -> list[User]:
        """All users, by name."""

    def add(self, name: str, role: Role, password_hash: str) -> User:
        """Create a user. Raises ConflictError if the name is taken."""

    def update(
        self,
        name: str,
        *,
        role: Role | None = None,
        password_hash: str | None = None,
        disabled: bool | None = None,
    ) -> User:
        """Change a user; a new password, role or disabling revokes its tokens.

        Raises NotFoundError if there is no such user, ConflictError (code ``last_admin``) if
        the change would leave no enabled admin.
        """

    def count(self) -> int:
        """How many users exist."""


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def _row_to_user(row: Mapping[str, Any]) -> User:
    return User(
        name=row["name"],
        role=Role(row["role"]),
        password_hash=row["password_hash"],
        disabled=bool(row["disabled"]),
        token_generation=row["token_generation"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


class SqlUserStore:
    """:class:`UserStore` in the authority's database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, name: str) -> User | None:
        with self.db.read() as conn:
            row = conn.execute(select(users).where(users.c.name == name)).mappings().first()
        return _row_to_user(row) if row else None

    def list(self) -> list[User]:
        with self.db.read() as conn:
            rows = conn.execute(select(users).order_by(users.c.name)).mappings().all()
        return [_row_to_user(r) for r in rows]

    def add(self, name: str, role: Role, password_hash: str) -> User:
        check_user_name(name)
        now = _now()
        try:
            with self.db.transaction() as conn:
                conn.execute(
                    users.insert().values(
                        name=name,
                        role=Role(role).value,
                        password_hash=password_hash,
                        created_at=now,
                        updated_at=now,
                    )
                )
        except IntegrityError as exc:
            raise ConflictError(f"user {name!r} already exists", code="user_exists") from exc
        user = self.get(name)
        assert user is not None
        return user

    def update(
        self,
        name: str,
        *,
        role: Role | None = None,
        password_hash: str | None = None,
        disabled: bool | None = None,
    ) -> User:
        # The table stays locked to other writers from the count to the update (PostgreSQL), so
        # two admins demoted at once cannot both pass the last-admin check.
        with self.db.transaction(lock="users") as conn:
            row = conn.execute(select(users).where(users.c.name == name)).mappings().first()
            if row is None:
                raise NotFoundError(f"no user {name!r}")
            user = _row_to_user(row)
            new_role = Role(role) if role is not None else user.role
            new_hash = password_hash if password_hash is not None else user.password_hash
            new_disabled = disabled if disabled is not None else user.disabled
            if (
                user.role is Role.admin
                and not user.disabled
                and (new_role is not Role.admin or new_disabled)
            ):
                others = conn.execute(
                    select(func.count())
                    .select_from(users)
                    .where(
                        users.c.role == Role.admin.value,
                        users.c.disabled == 0,
                        users.c.name != name,
                    )
                ).scalar_one()
                if not others:
                    raise ConflictError(
                        f"{name!r} is the last enabled admin: add another admin before demoting "
                        "or disabling it",
                        code="last_admin",
                    )
            revoke = new_role != user.role or new_hash != user.password_hash or new_disabled
            conn.execute(
                users.update()
                .where(users.c.name == name)
                .values(
                    role=new_role.value,
                    password_hash=new_hash,
                    disabled=int(new_disabled),
                    token_generation=users.c.token_generation + int(revoke),
                    updated_at=_now(),
                )
            )
        updated = self.get(name)
        assert updated is not None
        return updated

    def count(self) -> int:
        with self.db.read() as conn:
            return conn.execute(select(func.count()).select_from(users)).scalar_one()
