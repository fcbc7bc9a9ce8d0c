"""lenslet_http: the Starlette ASGI adapter over :class:`lenslet_core.Lenslet`.

    from lenslet_http import create_app
    app = create_app("/photos")            # run it: uvicorn, hypercorn, ...

It parses requests, calls the facade and turns results and errors into HTTP; no gallery logic
lives here. Installed with ``lenslet-core[http]``.
"""

from .app import create_app
from .lifespan import background
from .served import LensletApp, Served

__all__ = ["LensletApp", "Served", "background", "create_app"]
