"""``/v1/users``: user management (admins only).

The separation of duties these routes keep is described in :mod:`authority_service.users`: an
admin cannot change their own role, and the last enabled admin cannot be demoted or disabled.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from starlette.concurrency import run_in_threadpool

from authority_service.api.deps import ServicesDep, authorize, current_attempt
from authority_service.api.schemas import ErrorOut, UserCreate, UserOut, UserUpdate
from authority_service.errors import NotFoundError, PermissionDeniedError
from authority_service.users import USER_NAME_PATTERN, Role, User

router = APIRouter(prefix="/v1/users", tags=["users"])

_ERRORS = {
    401: {"model": ErrorOut, "description": "No token, or a bad one."},
    403: {"model": ErrorOut, "description": "Only admins manage users."},
    422: {"model": ErrorOut, "description": "Invalid name, role or password."},
}


def _granted(request: Request, services: ServicesDep, detail: str) -> None:
    attempt = current_attempt(request)
    services.record(attempt.entry("granted", detail))
    attempt.recorded = True


@router.get("", response_model=list[UserOut], responses=_ERRORS, summary="List users")
def list_users(
    request: Request,
    admin: Annotated[User, Depends(authorize("list_users", {Role.admin}))],
    services: ServicesDep,
) -> list[UserOut]:
    users = services.users.list()
    _granted(request, services, f"{len(users)} users listed")
    return [UserOut.of(u) for u in users]


@router.post(
    "",
    response_model=UserOut,
    status_code=201,
    responses={**_ERRORS, 409: {"model": ErrorOut, "description": "The name is taken."}},
    summary="Create a user",
)
async def create_user(
    request: Request,
    body: UserCreate,
    admin: Annotated[User, Depends(authorize("add_user", {Role.admin}))],
    services: ServicesDep,
) -> UserOut:
    password_hash = await run_in_threadpool(services.passwords.hash, body.password)
    user = services.users.add(body.name, body.role, password_hash)
    _granted(request, services, f"user {user.name} added as {user.role.value}")
    return UserOut.of(user)


@router.patch(
    "/{name}",
    response_model=UserOut,
    responses={
        **_ERRORS,
        403: {"model": ErrorOut, "description": "Not an admin, or an admin's own role."},
        404: {"model": ErrorOut, "description": "No such user."},
        409: {"model": ErrorOut, "description": "It would leave no enabled admin."},
    },
    summary="Change a user's role, password or status (revokes its tokens)",
)
async def update_user(
    request: Request,
    name: str,
    body: UserUpdate,
    admin: Annotated[User, Depends(authorize("update_user", {Role.admin}))],
    services: ServicesDep,
) -> UserOut:
    """Raises PermissionDeniedError (``self_role_change``) when an admin changes their own
    role, ConflictError (``last_admin``) when no enabled admin would be left."""
    if name == admin.name and body.role is not None and body.role is not admin.role:
        raise PermissionDeniedError(
            "an admin cannot change their own role; another admin must",
            code="self_role_change",
        )
    password_hash = None
    if body.password is not None:
        password_hash = await run_in_threadpool(services.passwords.hash, body.password)
    user = services.users.update(
        name, role=body.role, password_hash=password_hash, disabled=body.disabled
    )
    changes = []
    if body.role is not None:
        changes.append(f"role={body.role.value}")
    if body.disabled is not None:
        changes.append(f"disabled={body.disabled}")
    if password_hash is not None:
        changes.append("password")
    _granted(request, services, f"user {name} updated: {', '.join(changes) or 'nothing'}")
    return UserOut.of(user)


@router.post(
    "/{name}/unlock",
    response_model=UserOut,
    responses={**_ERRORS, 404: {"model": ErrorOut, "description": "No such user."}},
    summary="Lift the login lockouts of a user at every client address",
)
def unlock_user(
    request: Request,
    name: Annotated[str, Path(pattern=USER_NAME_PATTERN)],
    admin: Annotated[User, Depends(authorize("unlock_user", {Role.admin}))],
    services: ServicesDep,
) -> UserOut:
    """Forget the user's failed logins and lockouts (kept in this process's memory).

    Raises NotFoundError if there is no such user.
    """
    user = services.users.get(name)
    if user is None:
        raise NotFoundError(f"no user {name!r}")
    assert services.login_limiter is not None
    locked = services.login_limiter.unlock(name)
    _granted(request, services, f"user {name} unlocked: {locked} locked-out client address(es)")
    return UserOut.of(user)
