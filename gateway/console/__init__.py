"""The admin console in the browser, at ``/admin/ui``: the admin API's logic, as pages.

``views`` (the pages and forms), ``sessions`` (sign-in with the admin key,
cookies, CSRF, idle expiry), ``stats`` (the dashboard's and the usage
report's counts), ``i18n`` (Vietnamese and English); ``templates/`` and
``static/`` ship in the wheel. Nothing is fetched from another site: the
province's network may be closed.
"""

from gateway.console.views import console_router

__all__ = ["console_router"]
