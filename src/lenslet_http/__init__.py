"""lenslet_http: the Starlette ASGI adapter over :class:`lenslet_core.Lenslet`.

Not built yet: the HTTP surface of design.md lands with its own issue. The package exists so the
distribution's layout (and its ``http`` extra) is stable from the first release.
"""

__all__: list[str] = []
