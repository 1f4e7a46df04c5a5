"""The dashboard: server-rendered pages under ``/ui`` (Jinja2, inline SVG charts, no JavaScript).

``create_app`` registers :func:`root_redirect` and :func:`ui_router` and passes
:func:`template_config` as the app's ``template_config``.
"""

from app.web.ui.pages import root_redirect, template_config, ui_router

__all__ = ["root_redirect", "template_config", "ui_router"]
