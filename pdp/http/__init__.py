"""HTTP adapter: the FastAPI application over the framework-free core."""

from pdp.http.app import app_from_environment, create_app

__all__ = ["app_from_environment", "create_app"]
