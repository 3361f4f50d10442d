"""The HTTP service: FastAPI routers, thin over the domain services."""
