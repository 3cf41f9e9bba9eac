"""``create_app``: the FastAPI application (routes, error answers, limits, the web page)."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from robosam.errors import InputError
from robosam.segmenter import Segmenter
from robosam.serve.config import ServeConfig
from robosam.serve.engine import Engine
from robosam.serve.limits import BodyLimitMiddleware, Busy
from robosam.serve.routes import open_router, router

STATIC = Path(__file__).resolve().parent / "static"


def create_app(config: ServeConfig | None = None, segmenter: Segmenter | None = None) -> FastAPI:
    """The app for ``config`` (defaults when None). ``segmenter``: an already built one to serve instead of
    loading ``config.model`` (tests, benchmarks). The model loads here, before the server listens."""
    config = config or ServeConfig()
    engine = Engine(config, segmenter)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):  # noqa: ANN202
        sweeper = asyncio.create_task(_sweep(engine))
        try:
            yield
        finally:
            sweeper.cancel()
            engine.close()

    app = FastAPI(
        title="robosam",
        summary="Segment Anything for robots over HTTP: one model and one embedding cache for every client.",
        version=_version(),
        lifespan=lifespan,
    )
    app.state.engine = engine
    app.add_middleware(BodyLimitMiddleware, max_bytes=config.max_upload_bytes)

    @app.exception_handler(InputError)
    async def input_error(_: Request, error: InputError) -> JSONResponse:
        return JSONResponse({"detail": str(error)}, status_code=400)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        # FastAPI's default echoes the input, which may not even be JSON (NaN): name the field and the rule
        detail = [
            {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
            for e in error.errors()
        ]
        return JSONResponse({"detail": detail}, status_code=422)

    @app.exception_handler(Busy)
    async def busy(_: Request, error: Busy) -> JSONResponse:
        return JSONResponse(
            {"detail": str(error)}, status_code=503, headers={"Retry-After": str(error.retry_after_s)}
        )

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.include_router(open_router)
    app.include_router(router)
    return app


async def _sweep(engine: Engine) -> None:
    """Drop idle images and sessions even when no request comes."""
    period = min(max(engine.config.idle_s / 4, 0.05), 30.0)
    while True:
        await asyncio.sleep(period)
        engine.images.expire()
        engine.sessions.sessions.expire()


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("robosam")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0"
