# Copyright (c) canary.istio contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The one error contract of the collection: what a helper raises and how a module fails with it.

Every error a helper raises for the user to act on is a ``CanaryError``. Its message says what is
wrong and how to fix it; ``option`` names the module option that fixes it (None when no option
does: an unreachable server, a refused write); ``result_fields()`` is what else the failed task
shows (an API's status and reason, the holder of a lock, the subsets that are missing). Helpers raise, they never take
``module``: one ``fail_from_error`` turns any of these errors into a failed task, so every module
fails the same way.

PRIVATE to this collection: may change at any time.
"""

from __future__ import annotations

import contextlib
import typing as t


class CanaryError(Exception):
    """Base of every error the collection raises for the user to act on. Messages never hold a
    credential: the clients redact what servers echo before raising. ``action``: what the module
    was doing when it happened (set by ``doing``), put before the message."""

    action: str | None = None

    def __init__(self, message: str, option: str | None = None, **fields: t.Any) -> None:
        super().__init__(message)
        self.option = option
        self.fields = fields

    def result_fields(self) -> dict[str, t.Any]:
        """Fields of the failed task's result besides ``msg`` and ``option``."""
        return dict(self.fields)


@contextlib.contextmanager
def doing(action: str, kinds: tuple[type[CanaryError], ...] = (CanaryError,)) -> t.Iterator[None]:
    """Errors of ``kinds`` raised inside say what was being done (``updating VirtualService
    prod/reviews: 409 Conflict: ...``), unless a narrower ``doing`` said it already. An error that
    names the option to fix is about the input, whatever the step: it stays as it is."""
    try:
        yield
    except kinds as exc:
        if exc.action is None and exc.option is None:
            exc.action = action
        raise


def error_message(exc: BaseException) -> str:
    """The message with the option to fix in front (``weights: ...``), unless it names it there already."""
    message = str(exc)
    option = getattr(exc, "option", None)
    if option and not message.startswith(option):
        return f"{option}: {message}"
    return message


def fail_from_error(module: t.Any, exc: BaseException, action: str | None = None, **fields: t.Any) -> t.NoReturn:
    """Fail the module with ``exc``: ``msg`` (after ``action``, what the module was doing, when
    given or set by ``doing``), ``option`` when one fixes it, the error's own result fields and
    ``fields``. Secrets are kept out twice over: the clients redact what servers echo before
    raising, and Ansible masks in the result every spelling ``mask_secrets`` gave the module."""
    message = error_message(exc)
    action = action or getattr(exc, "action", None)
    result: dict[str, t.Any] = {"msg": f"{action}: {message}" if action else message}
    if getattr(exc, "option", None):
        result["option"] = exc.option  # type: ignore[attr-defined]
    if isinstance(exc, CanaryError):
        result.update(exc.result_fields())
    result.update(fields)
    module.fail_json(**result)
    raise AssertionError("unreachable")  # fail_json exits


def exit_from(module: t.Any, run: t.Callable[[t.Any], dict[str, t.Any]]) -> t.NoReturn:
    """Exit the module with what ``run(module)`` returns, or fail it with the CanaryError it raises:
    every module's ``main()`` ends here."""
    try:
        result = run(module)
    except CanaryError as exc:
        fail_from_error(module, exc)
    module.exit_json(**result)
    raise AssertionError("unreachable")  # exit_json exits
