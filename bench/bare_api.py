"""The baseline of bench/api_bench.py: a FastAPI app whose endpoints do nothing, served
by the same uvicorn settings as `integration-service api` (one process, no access log)."""

from __future__ import annotations

import sys

import uvicorn
from fastapi import FastAPI

app = FastAPI()


@app.get("/noop/{item_id}")
def read_nothing(item_id: str) -> dict[str, str]:
    return {"id": item_id}


@app.post("/noop/{item_id}", status_code=202)
def accept_nothing(item_id: str, body: dict[str, object]) -> dict[str, str]:
    return {"id": item_id}


@app.get("/health/live")
def live() -> dict[str, str]:
    return {"status": "ok"}


if __name__ == "__main__":
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        log_level="warning",
        access_log=False,
        server_header=False,
    )
