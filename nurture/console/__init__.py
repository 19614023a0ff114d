"""The console: server-rendered pages where sales, marketers and analysts look.

- `app`: the Starlette app (`create_console`), mounted at ``/console`` by the
  tracking service, and its routes;
- `cookies`: the signed session cookie, CSRF tokens, safe redirects;
- `permissions`: who may see and do what, asked by every view;
- `users`: console users, argon2 passwords and the lock-out;
- `inbox`: the sales inbox's queries;
- `views`: one function per page or form; templates in ``templates/``.
"""

from __future__ import annotations

from nurture.console.app import create_console
from nurture.console.users import Lockout

__all__ = ["Lockout", "create_console"]
