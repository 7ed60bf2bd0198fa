"""Server-rendered pages: Jinja2 with autoescaping, and responses with strict security headers."""

from mcp_front.web.pages import error_page, form_action_source, render

__all__ = ["error_page", "form_action_source", "render"]
