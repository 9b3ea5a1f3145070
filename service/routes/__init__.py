"""The HTTP routes, one router per concern: ``translate`` (LibreTranslate's API),
``admin`` (model reload) and ``meta`` (page, health, metrics, model, docs)."""

from __future__ import annotations

from fastapi import APIRouter

from service.routes import admin, meta, translate

ROUTERS: tuple[APIRouter, ...] = (meta.router, translate.router, admin.router)
