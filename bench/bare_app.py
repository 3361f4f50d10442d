"""The ceiling for bench_api: a FastAPI endpoint that does nothing, served the same way."""

from fastapi import FastAPI

app = FastAPI()


@app.get("/bare")
async def bare() -> dict[str, bool]:
    return {"ok": True}
