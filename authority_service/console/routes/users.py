"""The admin's users page: list, add, disable or enable, reset a password.

Each form calls ``/v1/users``'s own function (:mod:`authority_service.api.routes.users`): the
same checks (``self_role_change``, ``last_admin``, the password policy), the same audit
records, and the same effect on the user's tokens and console sessions (revoked at once).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from authority_service.api.deps import ServicesDep
from authority_service.api.routes.users import create_user, list_users, update_user
from authority_service.api.schemas import UserCreate, UserUpdate
from authority_service.console.deps import console_user
from authority_service.console.forms import field, validated
from authority_service.console.render import ConsoleContext, base_url, page
from authority_service.console.security import PREFIX
from authority_service.errors import InvalidRequestError
from authority_service.users import USER_NAME_PATTERN, Role, User

router = APIRouter(prefix=PREFIX, include_in_schema=False)

Admin = {Role.admin}
#: The changes the per-user form offers.
CHANGES = ("disable", "enable", "password")


def _back(request: Request, message: str) -> RedirectResponse:
    console: ConsoleContext = request.state.console
    console.session.flash = message
    return RedirectResponse(f"{base_url(request)}/users", status_code=303)


@router.get("/users", response_class=HTMLResponse)
def users_page(
    request: Request,
    admin: Annotated[User, Depends(console_user("list_users", Admin))],
    services: ServicesDep,
) -> HTMLResponse:
    """Every user, with the forms to change each, and the form to add one."""
    return page(
        request,
        "users.html",
        users=list_users(request, admin, services),
        roles=[role.value for role in Role],
        min_password=services.passwords.min_length,
    )


@router.post("/users")
async def add_user(
    request: Request,
    admin: Annotated[User, Depends(console_user("add_user", Admin, csrf=True))],
    services: ServicesDep,
) -> RedirectResponse:
    """Create a user (``POST /v1/users``).

    Raises:
        InvalidRequestError / ConflictError: as the API refuses them (422, 409), audited.
    """
    form = await request.form()
    body = validated(
        UserCreate,
        name=field(form, "name"),
        role=field(form, "role"),
        password=form.get("password") if isinstance(form.get("password"), str) else "",
    )
    user = await create_user(request, body, admin, services)
    return _back(request, f"User {user.name} added as {user.role.value}.")


@router.post("/users/{name}")
async def change_user(
    request: Request,
    name: Annotated[str, Path(pattern=USER_NAME_PATTERN)],
    admin: Annotated[User, Depends(console_user("update_user", Admin, csrf=True))],
    services: ServicesDep,
) -> RedirectResponse:
    """Disable, enable, or set a new password (``PATCH /v1/users/{name}``); any of them ends
    the user's sessions and tokens.

    Raises:
        InvalidRequestError / NotFoundError / ConflictError: as the API refuses them, audited.
    """
    form = await request.form()
    change = field(form, "change")
    if change not in CHANGES:
        raise InvalidRequestError(f"change must be one of {', '.join(CHANGES)}", field="change")
    if change == "password":
        password = form.get("password")
        body = validated(UserUpdate, password=password if isinstance(password, str) else "")
    else:
        body = validated(UserUpdate, disabled=change == "disable")
    user = await update_user(request, name, body, admin, services)
    done = {
        "disable": "disabled; their sessions are ended",
        "enable": "enabled",
        "password": "given a new password; their sessions are ended",
    }
    return _back(request, f"User {user.name} {done[change]}.")
