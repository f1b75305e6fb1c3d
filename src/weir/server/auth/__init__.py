"""Authentication for the API. The simplest mode: HTTP basic auth with one shared
credential (`basic`), and CSRF tokens for state-changing requests from browsers
(`csrf`). Both are pure ASGI middleware: a header check per request, nothing more."""
