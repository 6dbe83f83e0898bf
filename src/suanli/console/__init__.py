"""The web console (issue 17): server-rendered pages over the node's own API, served at `/`.

`install(app)` adds the pages, the sign-in and the packaged static files to an app built by
`suanli.api.app.create_app`; `suanli serve` does so. Every figure on a page comes from the
API, called in-process with the signed-in key, so roles, tenant scoping, rate limits and the
audit log are the API's own.
"""

from suanli.console.app import install

__all__ = ["install"]
