"""What the routes share, one per app: settings, metrics, the model slot, batcher, cache."""

from __future__ import annotations

from dataclasses import dataclass, field

from model.runtime.parallelism import Parallelism, plan_parallelism, usable_cores
from model.translation import SentenceTranslation
from service.batcher import DynamicBatcher
from service.cache import TranslationCache
from service.detect import LanguageDetector
from service.files import TranslatedFiles
from service.metrics import ServiceMetrics
from service.model_slot import ModelSlot, TranslatorLoader, translator_loader
from service.settings import Settings
from service.translation import TextTranslationService


@dataclass
class ServiceState:
    """Everything the routes share; one per app (``app.state.service``)."""

    settings: Settings
    metrics: ServiceMetrics
    slot: ModelSlot
    batcher: DynamicBatcher[SentenceTranslation]
    cache: TranslationCache
    texts: TextTranslationService
    parallelism: Parallelism
    accepting: bool = False  # True between a successful start-up and the start of shutdown
    startup_error: str | None = None  # why start-up failed (the model did not load), if it did
    detector: LanguageDetector = field(default_factory=LanguageDetector)
    files: TranslatedFiles = field(default_factory=TranslatedFiles)


def build_state(settings: Settings, loader: TranslatorLoader | None = None) -> ServiceState:
    """The shared objects, built cheaply: the model itself is loaded by the app's lifespan."""
    metrics = ServiceMetrics()
    parallelism = plan_parallelism(
        settings.device, settings.model_workers, settings.torch_threads, usable_cores()
    )
    batcher: DynamicBatcher[SentenceTranslation] = DynamicBatcher(
        max_batch_sentences=settings.max_batch_sentences,
        max_batch_tokens=settings.max_batch_tokens,
        max_wait_s=settings.max_wait_s,
        max_queue_tokens=settings.max_queue_tokens,
        observer=metrics,
        workers=parallelism.workers,
    )
    cache = TranslationCache(settings.cache_size, settings.cache_bytes)
    # The batcher alone sizes batches: the Translator searches each one as it is given.
    slot = ModelSlot(
        loader
        or translator_loader(
            settings.device,
            probe_beam=max(settings.beam or 5, 2),
            quantize=settings.quantize,
            shortlist=settings.shortlist,
            cuda_graphs=settings.cuda_graphs,
        )
    )
    return ServiceState(
        settings=settings,
        metrics=metrics,
        slot=slot,
        batcher=batcher,
        cache=cache,
        texts=TextTranslationService(batcher, cache, metrics),
        parallelism=parallelism,
    )
