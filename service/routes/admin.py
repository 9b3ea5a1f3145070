"""The admin API: ``POST /admin/reload``, behind ``Authorization: Bearer <MT_ADMIN_TOKEN>``.

A reload loads only from the allowed folders (:mod:`service.reload_roots`)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import ValidationError

from service.deps import StateDep, require_admin_token
from service.errors import InvalidRequest, describe_validation_errors
from service.model_info import public_model_info
from service.model_slot import ModelLoadError
from service.reload_roots import refusal
from service.schemas import ReloadRequest, parse_json_object

router = APIRouter(prefix="/admin", dependencies=[Depends(require_admin_token)])


async def _reload_request(request: Request) -> ReloadRequest:
    """The optional JSON body (``{"model_dir": ...}``); empty means "the same directory"."""
    raw = await request.body()
    try:
        return ReloadRequest.model_validate(parse_json_object(raw) if raw.strip() else {})
    except ValidationError as exc:
        raise InvalidRequest(describe_validation_errors(exc.errors())) from None


@router.post("/reload", summary="Load the model directory again, or a new one")
async def reload(request: Request, state: StateDep) -> dict[str, Any]:
    wanted = await _reload_request(request)
    current = state.slot.current
    fallback = current.model_dir if current is not None else state.settings.model_dir
    path = Path(wanted.model_dir) if wanted.model_dir else fallback
    still = "the previous model keeps serving" if current else "no model is loaded"
    refused = await asyncio.to_thread(refusal, path, state.settings)  # touches the disk
    if refused is not None:
        state.metrics.reloads.labels(outcome="rejected").inc()
        raise InvalidRequest(f"Reload rejected ({still}): {refused}")
    try:
        served = await state.slot.load(path)
    except ModelLoadError as exc:
        state.metrics.reloads.labels(outcome="rejected").inc()
        raise InvalidRequest(f"Reload rejected ({still}): {exc}") from None
    state.cache.clear()  # entries of the old generation can never be hit again
    state.metrics.reloads.labels(outcome="ok").inc()
    return {"status": "reloaded", "model_dir": str(served.model_dir), **public_model_info(served)}
