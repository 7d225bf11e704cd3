"""Celery tasks that send one email, with the one retry policy they share.

Each task calls one service that sends the email. While the mail server is down or refuses
(an `OSError` or `smtplib.SMTPException`), the task logs a warning without the message and
retries with exponential backoff; anything else fails the task as usual.
"""

from __future__ import annotations

import logging
import smtplib
from collections.abc import Callable

from celery import shared_task

logger = logging.getLogger(__name__)

MAIL_ERRORS = (OSError, smtplib.SMTPException)


def mail_task(*, name: str, what: str, retries: int, backoff: int, backoff_max: int) -> Callable:
    """Make `send(...)` a Celery task named `name` that retries up to `retries` times, after
    `backoff` · 2ⁿ seconds (at most `backoff_max`), while the mail server is unavailable."""

    def decorate(send: Callable[..., int]):
        def run(self, *args, **kwargs) -> int:
            try:
                return send(*args, **kwargs)
            except MAIL_ERRORS as error:
                logger.warning("%s not sent (%s); retrying", what, error.__class__.__name__)
                countdown = min(backoff_max, backoff * 2**self.request.retries)
                raise self.retry(exc=error, countdown=countdown) from error

        # Not functools.wraps: Celery reads the signature (through __wrapped__) to check
        # the arguments of a bound task, and `send` has no `self`.
        run.__name__, run.__qualname__ = send.__name__, send.__qualname__
        run.__module__, run.__doc__ = send.__module__, send.__doc__
        return shared_task(
            bind=True,
            name=name,
            acks_late=True,
            reject_on_worker_lost=True,
            max_retries=retries,
            soft_time_limit=60,
            time_limit=90,
        )(run)

    return decorate
