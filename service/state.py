"""What the routes share, one per app: settings, metrics, the served models, the cache."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from model.runtime.parallelism import Parallelism, plan_parallelism, usable_cores
from model.translation import SentenceTranslation
from service.batcher import DynamicBatcher
from service.cache import TranslationCache
from service.detect import LanguageDetector
from service.files import TranslatedFiles
from service.metrics import PairObserver, ServiceMetrics
from service.model_slot import ModelSlot, TranslatorLoader, translator_loader
from service.registry import ModelLane, ModelRegistry, slot_label
from service.settings import Settings
from service.translation import TextTranslationService


@dataclass
class ServiceState:
    """Everything the routes share; one per app (``app.state.service``)."""

    settings: Settings
    metrics: ServiceMetrics
    models: ModelRegistry
    cache: TranslationCache
    parallelism: Parallelism
    accepting: bool = False  # True between a successful start-up and the start of shutdown
    startup_error: str | None = None  # why start-up failed (a model did not load), if it did
    detector: LanguageDetector = field(default_factory=LanguageDetector)
    files: TranslatedFiles = field(default_factory=TranslatedFiles)


def build_lane(
    settings: Settings,
    model_dir: Path,
    loader: TranslatorLoader,
    shared: tuple[ServiceMetrics, TranslationCache],
    workers: int,
) -> ModelLane:
    """One model's slot, batcher (``workers`` searches at once) and text service."""
    metrics, cache = shared
    slot = ModelSlot(loader)
    batcher: DynamicBatcher[SentenceTranslation] = DynamicBatcher(
        max_batch_sentences=settings.max_batch_sentences,
        max_batch_tokens=settings.max_batch_tokens,
        max_wait_s=settings.max_wait_s,
        max_queue_tokens=settings.max_queue_tokens,
        observer=PairObserver(metrics, lambda: slot_label(slot)),  # known once loaded
        workers=workers,
    )
    return ModelLane(model_dir, slot, batcher, TextTranslationService(batcher, cache, metrics))


def build_state(settings: Settings, loader: TranslatorLoader | None = None) -> ServiceState:
    """The shared objects, built cheaply: the models themselves are loaded by the app's
    lifespan. Each model gets a batcher of its own, so one direction's queue never delays
    the other's."""
    metrics = ServiceMetrics()
    model_dirs = settings.served_model_dirs
    parallelism = plan_parallelism(
        settings.device,
        settings.model_workers,
        settings.torch_threads,
        usable_cores(),
        models=len(model_dirs),
    )
    cache = TranslationCache(settings.cache_size, settings.cache_bytes)
    # The batcher alone sizes batches: the Translator searches each one as it is given.
    load = loader or translator_loader(
        settings.device,
        probe_beam=max(settings.beam or 5, 2),
        quantize=settings.quantize,
        shortlist=settings.shortlist,
        cuda_graphs=settings.cuda_graphs,
    )
    lanes = [
        build_lane(settings, model_dir, load, (metrics, cache), parallelism.workers)
        for model_dir in model_dirs
    ]
    return ServiceState(
        settings=settings,
        metrics=metrics,
        models=ModelRegistry(lanes),
        cache=cache,
        parallelism=parallelism,
    )
