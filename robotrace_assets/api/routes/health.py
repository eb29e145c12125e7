"""GET /api/health: liveness without touching the database (the benchmark's baseline route)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

router = APIRouter()


class Health(BaseModel):
    status: str


@router.get("/api/health", response_model=Health, tags=["service"])
def health() -> Health:
    return Health(status="ok")
