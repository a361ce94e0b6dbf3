"""`xsync ui`: a web page showing every object's sync state, error and backoff, live.

`run_ui(argv)` is the command; `create_app(store, models, deps=...)` the Starlette app.
"""

from .app import create_app as create_app
from .auth import Credentials as Credentials, login_required as login_required
from .serve_cli import UiServer as UiServer, run_ui as run_ui

__all__ = ["Credentials", "UiServer", "create_app", "login_required", "run_ui"]
