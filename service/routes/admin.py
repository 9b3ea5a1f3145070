"""The admin API: ``POST /admin/reload``, behind ``Authorization: Bearer <MT_ADMIN_TOKEN>``.

A reload replaces one served model: the one of the pair that ``source`` and ``target`` name,
else the one that translates the pair of the ``model_dir`` given, else the default model; the
others keep serving without a pause. It loads only from the allowed folders
(:mod:`service.reload_roots`), and only a model of the same pair."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import ValidationError

from model.store.languages import directory_pair
from service.deps import StateDep, lane_named, require_admin_token
from service.errors import InvalidRequest, describe_validation_errors
from service.model_info import public_model_info
from service.model_slot import ModelLoadError
from service.registry import ModelLane, ModelRegistry
from service.reload_roots import refusal
from service.schemas import ReloadRequest, parse_json_object
from service.state import ServiceState

UNKNOWN_PAIR = "unknown"  # the metrics label of a reload refused before its pair is known

router = APIRouter(prefix="/admin", dependencies=[Depends(require_admin_token)])


async def _reload_request(request: Request) -> ReloadRequest:
    """The optional JSON body (``{"model_dir": ..., "source": ..., "target": ...}``); empty
    means "the default model's directory again"."""
    raw = await request.body()
    try:
        return ReloadRequest.model_validate(parse_json_object(raw) if raw.strip() else {})
    except ValidationError as exc:
        raise InvalidRequest(describe_validation_errors(exc.errors())) from None


def _lane_to_replace(models: ModelRegistry, wanted: ReloadRequest, path: Path | None) -> ModelLane:
    """The lane a reload replaces: the pair named, else the pair of the model at ``path``
    when a served model translates it, else the default (the load then says what is wrong)."""
    if wanted.source is not None or wanted.target is not None or path is None:
        return lane_named(models, wanted.source, wanted.target)
    try:
        pair = directory_pair(path)
    except (OSError, ValueError):
        return models.default
    return models.find(*pair) or models.default


async def _check_allowed(state: ServiceState, path: Path, label: str, still: str) -> None:
    """400 when a reload may not load ``path`` (:mod:`service.reload_roots`)."""
    refused = await asyncio.to_thread(refusal, path, state.settings)  # touches the disk
    if refused is not None:
        state.metrics.reloads.labels(pair=label, outcome="rejected").inc()
        raise InvalidRequest(f"Reload rejected ({still}): {refused}")


@router.post("/reload", summary="Load a served model's directory again, or a new one")
async def reload(request: Request, state: StateDep) -> dict[str, Any]:
    wanted = await _reload_request(request)
    named = Path(wanted.model_dir) if wanted.model_dir else None
    keeps = "the previous model keeps serving"
    if named is not None:  # before its config.json is read to find the pair it translates
        await _check_allowed(state, named, UNKNOWN_PAIR, keeps)
    lane = await asyncio.to_thread(_lane_to_replace, state.models, wanted, named)
    current = lane.slot.current
    still = keeps if current else "no model is loaded"
    path = named or (current.model_dir if current is not None else lane.model_dir)
    if named is None:
        await _check_allowed(state, path, lane.label, still)
    try:
        served = await lane.slot.load(path)
    except ModelLoadError as exc:
        state.metrics.reloads.labels(pair=lane.label, outcome="rejected").inc()
        raise InvalidRequest(f"Reload rejected ({still}): {exc}") from None
    state.cache.forget_pair(served.pair)  # its entries can never be hit again
    state.metrics.reloads.labels(pair=lane.label, outcome="ok").inc()
    return {"status": "reloaded", "model_dir": str(served.model_dir), **public_model_info(served)}
