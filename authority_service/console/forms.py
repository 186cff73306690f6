"""Form values of the console's pages, checked with the API's own request models."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData

from authority_service.errors import InvalidRequestError

__all__ = ["field", "validated"]

Model = TypeVar("Model", bound=BaseModel)


def field(form: FormData, name: str) -> str:
    """A text field of ``form``, stripped ("" when missing or a file)."""
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def validated(model: type[Model], **values: Any) -> Model:
    """``model(**values)``, its validation refused as the API refuses a bad body.

    Raises:
        InvalidRequestError: a value is invalid (``field`` names the first; 422).
    """
    try:
        return model(**values)
    except ValidationError as exc:
        problems = exc.errors()
        where = ".".join(str(p) for p in problems[0].get("loc", ())) if problems else ""
        detail = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg', '')}" for e in problems
        )
        raise InvalidRequestError(detail or "invalid form", field=where) from exc
