"""The dynamic batcher, against a fake model that records its calls (:mod:`tests.batcher_fakes`):
batch composition, timing, failures and cancellation, observed exactly.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from model.search.options import SearchOptions
from service.batch_contracts import BatcherClosedError, QueueFullError
from service.batcher import DynamicBatcher
from tests.batcher_fakes import GREEDY, FakeModel, expected, wait_until

pytestmark = pytest.mark.anyio


MakeBatcher = Callable[..., Awaitable[DynamicBatcher[str]]]


@pytest.fixture
async def make_batcher() -> AsyncIterator[MakeBatcher]:
    created: list[DynamicBatcher[str]] = []

    async def make(**kwargs: float) -> DynamicBatcher[str]:
        batcher: DynamicBatcher[str] = DynamicBatcher(**kwargs)  # type: ignore[arg-type]
        await batcher.start()
        created.append(batcher)
        return batcher

    yield make
    for batcher in created:
        await batcher.close(timeout_s=5)


async def test_concurrent_requests_share_few_model_calls(make_batcher: MakeBatcher) -> None:
    model = FakeModel()
    batcher = await make_batcher(max_batch_sentences=64, max_wait_s=0.05)
    sentences = [f"sentence number {i}" for i in range(40)]
    results = await asyncio.gather(*(batcher.translate(model, [s], GREEDY) for s in sentences))
    assert [r[0] for r in results] == [expected(s, GREEDY) for s in sentences]
    assert 1 <= len(model.calls) <= 4, [len(c.sentences) for c in model.calls]
    assert sum(len(c.sentences) for c in model.calls) == 40


async def test_admission_respects_the_limits_oldest_first(make_batcher: MakeBatcher) -> None:
    model = FakeModel()
    model.gate.clear()
    batcher = await make_batcher(max_batch_sentences=3, max_batch_tokens=12, max_wait_s=0.0)
    blocker = asyncio.create_task(batcher.translate(model, ["hold"], GREEDY))
    await wait_until(model.entered.is_set)
    lengths = [5, 1, 4, 2, 6, 1, 3, 2]
    sentences = [" ".join(f"w{i}" for _ in range(n)) for i, n in enumerate(lengths)]
    request = asyncio.create_task(batcher.translate(model, sentences, GREEDY))
    await wait_until(lambda: batcher.depth == len(sentences))
    model.gate.set()
    assert await request == [expected(s, GREEDY) for s in sentences]  # input order kept
    await blocker

    batches = [call.sentences for call in model.calls[1:]]
    assert sorted(s for batch in batches for s in batch) == sorted(sentences)
    for batch in batches:
        tokens = [len(s.split()) for s in batch]
        assert len(batch) <= 3
        assert len(batch) * max(tokens) <= 12 or len(batch) == 1
    # The oldest sentence (5 words) goes first, with what fits beside it (1 word: 2 x 5 <= 12).
    assert [len(s.split()) for s in batches[0]] == [5, 1]


async def test_sentences_join_a_running_search_and_leave_when_done(
    make_batcher: MakeBatcher,
) -> None:
    """Continuous batching: a long sentence keeps running while short ones come and go."""
    model = FakeModel(words_per_advance=1, advance_seconds=0.02)
    batcher = await make_batcher(max_wait_s=0.0)
    long = " ".join(["long"] * 200)  # 200 advances: at least 4 s
    long_task = asyncio.create_task(batcher.translate(model, [long], GREEDY))
    await wait_until(lambda: len(model.calls) >= 2)
    assert await batcher.translate(model, ["short"], GREEDY) == [expected("short", GREEDY)]
    assert not long_task.done()  # the short one did not wait for the long one
    assert await long_task == [expected(long, GREEDY)]
    # "short" joined the running search: it shares a call with the long sentence.
    assert any(call.sentences == [long, "short"] for call in model.calls)
    assert len(model.streams) == 1


async def test_a_sentence_nobody_waits_for_leaves_the_running_search(
    make_batcher: MakeBatcher,
) -> None:
    model = FakeModel(words_per_advance=1)
    batcher = await make_batcher(max_wait_s=0.0)
    forever = " ".join(["slow"] * 10_000)
    task = asyncio.create_task(batcher.translate(model, [forever], GREEDY))
    await wait_until(lambda: len(model.calls) >= 2)
    task.cancel()
    await wait_until(lambda: model.streams[0].cancelled == [0])
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await batcher.translate(model, ["next"], GREEDY) == [expected("next", GREEDY)]


async def test_each_sentence_is_encoded_once_and_searched_as_encoded(
    make_batcher: MakeBatcher,
) -> None:
    model = FakeModel()
    batcher = await make_batcher(max_wait_s=0.05)
    sentences = ["a b c", "d e", "f"]
    assert await batcher.translate(model, sentences, GREEDY) == [
        expected(s, GREEDY) for s in sentences
    ]
    assert model.encoded == sentences  # once each, when the request was queued
    (batch,) = model.searched
    assert {encoded.sentence for encoded in batch} == set(sentences)


async def test_the_token_budget_counts_every_row_of_a_chunked_sentence(
    make_batcher: MakeBatcher,
) -> None:
    """A sentence too long for one row is several rows of the same search: the padded budget
    is ``rows x longest row``, so it does not share a batch that it would overflow."""
    model = FakeModel(row_limit=4)
    model.gate.clear()
    batcher = await make_batcher(max_batch_tokens=16, max_wait_s=0.0)
    blocker = asyncio.create_task(batcher.translate(model, ["hold"], GREEDY))
    await wait_until(model.entered.is_set)
    # Rows of 4 and 4 words: 2 rows x 4 = 8 each, half the budget (not long); together 16.
    first, second = " ".join(["v"] * 8), " ".join(["w"] * 8)
    request = asyncio.create_task(batcher.translate(model, [first, second, "x y z"], GREEDY))
    await wait_until(lambda: batcher.depth == 3)
    model.gate.set()
    assert await request == [expected(s, GREEDY) for s in (first, second, "x y z")]
    await blocker
    # Counted as one row each, all three would fit (3 x 4 = 12); as rows, "x y z" waits.
    assert [call.sentences for call in model.calls[1:]] == [[first, second], ["x y z"]]


async def test_a_short_sentence_joins_a_search_that_runs_a_long_one(
    make_batcher: MakeBatcher,
) -> None:
    """The fairness rule: a sentence over the budget on its own (a 4,900-character text
    without sentence breaks) runs beside the budget, so short ones still join its search."""
    model = FakeModel(row_limit=4, words_per_advance=1, advance_seconds=0.005)
    batcher = await make_batcher(max_batch_tokens=12, max_wait_s=0.0)
    long = " ".join(["long"] * 400)  # 100 rows x 4: 33 budgets; 400 advances
    long_task = asyncio.create_task(batcher.translate(model, [long], GREEDY))
    await wait_until(lambda: len(model.calls) >= 2)
    short = await asyncio.wait_for(batcher.translate(model, ["a short one"], GREEDY), 5)
    assert short == [expected("a short one", GREEDY)]
    assert not long_task.done()  # the short one did not wait for the long one
    assert any(call.sentences == [long, "a short one"] for call in model.calls)
    long_task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await long_task


async def test_a_stream_runs_one_long_sentence_at_a_time(make_batcher: MakeBatcher) -> None:
    """Long sentences take turns; beside them the budget stays open to the others."""
    model = FakeModel(row_limit=4, words_per_advance=1)
    model.gate.clear()
    batcher = await make_batcher(max_batch_tokens=12, max_wait_s=0.0)
    blocker = asyncio.create_task(batcher.translate(model, ["hold"], GREEDY))
    await wait_until(model.entered.is_set)
    longs = [" ".join([word] * 12) for word in ("x", "y", "z")]  # 3 rows x 4 = 12: long
    shorts = ["a b", "c d", "e f"]  # 1 row x 2; three of them fit in the budget
    tasks = [asyncio.create_task(batcher.translate(model, [s], GREEDY)) for s in longs + shorts]
    await wait_until(lambda: batcher.depth == 6)
    model.gate.set()
    results = await asyncio.gather(*tasks)
    await blocker
    assert [r[0] for r in results] == [expected(s, GREEDY) for s in longs + shorts]
    for call in model.calls[1:]:
        assert sum(s in longs for s in call.sentences) <= 1, call.sentences
    first = model.calls[1].sentences
    assert first[0] == longs[0] and set(shorts) <= set(first)  # none waited for a long one


async def test_a_lone_sentence_waits_at_most_max_wait(make_batcher: MakeBatcher) -> None:
    model = FakeModel()
    batcher = await make_batcher(max_wait_s=0.2)
    started = time.monotonic()
    await batcher.translate(model, ["alone"], GREEDY)
    elapsed = time.monotonic() - started
    assert 0.15 <= elapsed < 2.0


async def test_a_full_batch_does_not_wait(make_batcher: MakeBatcher) -> None:
    model = FakeModel()
    batcher = await make_batcher(max_batch_sentences=2, max_wait_s=30.0)
    started = time.monotonic()
    await batcher.translate(model, ["one", "two"], GREEDY)
    assert time.monotonic() - started < 5.0


async def test_a_model_failure_reaches_every_waiter_and_the_batcher_survives(
    make_batcher: MakeBatcher,
) -> None:
    model = FakeModel(fail_with=ValueError("model exploded"))
    batcher = await make_batcher(max_wait_s=0.05)
    outcomes = await asyncio.gather(
        *(batcher.translate(model, [f"s{i}", f"t{i}"], GREEDY) for i in range(5)),
        return_exceptions=True,
    )
    assert all(isinstance(o, ValueError) and "exploded" in str(o) for o in outcomes), outcomes
    model.fail_with = None
    assert await batcher.translate(model, ["again"], GREEDY) == [expected("again", GREEDY)]


async def test_a_cancelled_waiter_does_not_poison_its_batch(make_batcher: MakeBatcher) -> None:
    model = FakeModel()
    model.gate.clear()
    batcher = await make_batcher(max_wait_s=0.0)
    # A and B are in the running batch; C and D queue behind it.
    first = [asyncio.create_task(batcher.translate(model, [s], GREEDY)) for s in ("a", "b")]
    await asyncio.sleep(0)  # both enqueued before the consumer takes the batch
    await wait_until(model.entered.is_set)
    queued = [asyncio.create_task(batcher.translate(model, [s], GREEDY)) for s in ("c", "d")]
    await wait_until(lambda: batcher.depth == 2)

    first[0].cancel()  # client of "a" disconnects while its batch runs
    queued[0].cancel()  # client of "c" disconnects while queued
    await wait_until(lambda: batcher.depth == 1)  # "c" has left the queue
    model.gate.set()

    assert await first[1] == [expected("b", GREEDY)]
    assert await queued[1] == [expected("d", GREEDY)]
    for task in (first[0], queued[0]):
        with pytest.raises(asyncio.CancelledError):
            await task
    assert [call.sentences for call in model.calls] == [["a", "b"], ["d"]]


async def test_requests_with_different_options_are_never_mixed(make_batcher: MakeBatcher) -> None:
    model = FakeModel()
    batcher = await make_batcher(max_wait_s=0.05)
    option_sets = [
        SearchOptions(beam=1),
        SearchOptions(beam=4, n_best=2),
        SearchOptions(beam=4, n_best=2, attention=True),
        SearchOptions(beam=5),
    ]
    jobs = [(f"text {i}", option_sets[i % 4]) for i in range(24)]
    results = await asyncio.gather(*(batcher.translate(model, [s], o) for s, o in jobs))
    assert [r[0] for r in results] == [expected(s, o) for s, o in jobs]
    for call in model.calls:
        wanted = {o for s, o in jobs if s in call.sentences}
        assert wanted == {call.options}
    assert len(model.calls) <= 8


async def test_models_are_never_mixed(make_batcher: MakeBatcher) -> None:
    old, new = FakeModel(), FakeModel()
    batcher = await make_batcher(max_wait_s=0.05)
    await asyncio.gather(
        *(batcher.translate(old if i % 2 else new, [f"x{i}"], GREEDY) for i in range(10))
    )
    assert {s for c in old.calls for s in c.sentences} == {f"x{i}" for i in range(1, 10, 2)}
    assert {s for c in new.calls for s in c.sentences} == {f"x{i}" for i in range(0, 10, 2)}


async def test_identical_sentences_in_a_batch_are_translated_once(
    make_batcher: MakeBatcher,
) -> None:
    model = FakeModel()
    batcher = await make_batcher(max_wait_s=0.05)
    results = await asyncio.gather(*(batcher.translate(model, ["same"], GREEDY) for _ in range(8)))
    assert all(r == [expected("same", GREEDY)] for r in results)
    assert [call.sentences for call in model.calls] == [["same"]]


async def test_a_full_queue_refuses_the_whole_request(make_batcher: MakeBatcher) -> None:
    model = FakeModel()
    model.gate.clear()
    batcher = await make_batcher(max_queue_tokens=3, max_wait_s=0.0)
    running = asyncio.create_task(batcher.translate(model, ["running"], GREEDY))
    await wait_until(model.entered.is_set)
    queued = asyncio.create_task(batcher.translate(model, ["q1", "q2"], GREEDY))
    await wait_until(lambda: batcher.depth == 2)
    with pytest.raises(QueueFullError, match="queue is full"):
        await batcher.translate(model, ["q3", "q4"], GREEDY)
    assert batcher.depth == 2  # nothing of the refused request was queued
    model.gate.set()
    assert await queued == [expected("q1", GREEDY), expected("q2", GREEDY)]
    await running


async def test_close_drains_the_queue_then_refuses_work() -> None:
    model = FakeModel()
    batcher: DynamicBatcher[str] = DynamicBatcher(max_batch_sentences=2, max_wait_s=0.01)
    await batcher.start()
    tasks = [asyncio.create_task(batcher.translate(model, [f"d{i}"], GREEDY)) for i in range(7)]
    await asyncio.sleep(0)
    await batcher.close(timeout_s=10)
    assert [(await t)[0] for t in tasks] == [expected(f"d{i}", GREEDY) for i in range(7)]
    with pytest.raises(BatcherClosedError):
        await batcher.translate(model, ["late"], GREEDY)


async def test_close_with_an_expired_timeout_fails_the_waiters() -> None:
    model = FakeModel()
    model.gate.clear()
    batcher: DynamicBatcher[str] = DynamicBatcher(max_wait_s=0.0)
    await batcher.start()
    running = asyncio.create_task(batcher.translate(model, ["stuck"], GREEDY))
    await wait_until(model.entered.is_set)
    queued = asyncio.create_task(batcher.translate(model, ["behind"], GREEDY))
    await wait_until(lambda: batcher.depth == 1)
    await batcher.close(timeout_s=0.05)
    model.gate.set()  # let the worker thread finish
    for task in (running, queued):
        with pytest.raises(BatcherClosedError):
            await task


async def test_two_workers_share_the_sentences_and_run_at_once(
    make_batcher: MakeBatcher,
) -> None:
    """Each lane takes its fair share, and the two lanes' model calls overlap in time."""
    model = FakeModel(advance_seconds=0.2)
    batcher = await make_batcher(workers=2, max_wait_s=0.1)
    sentences = [f"sentence {i}" for i in range(10)]
    results = await asyncio.gather(*(batcher.translate(model, [s], GREEDY) for s in sentences))
    assert [r[0] for r in results] == [expected(s, GREEDY) for s in sentences]
    assert len(model.streams) == 2
    assert sorted(len(started) for started in model.searched) == [5, 5]
    assert model.most_running == 2
    # Each lane's calls run on one thread of its own.
    thread_of = dict(model.threads)
    assert set(model.threads) == set(thread_of.items())
    assert sorted(thread_of.values()) == ["model-lane-0_0", "model-lane-1_0"]


async def test_a_worker_with_room_takes_what_the_busy_one_leaves(
    make_batcher: MakeBatcher,
) -> None:
    """A sentence that arrives while one lane runs starts at once in the idle lane."""
    model = FakeModel(words_per_advance=1, advance_seconds=0.02)
    batcher = await make_batcher(workers=2, max_wait_s=0.0)
    long = " ".join(["long"] * 100)
    long_task = asyncio.create_task(batcher.translate(model, [long], GREEDY))
    await wait_until(lambda: len(model.calls) >= 2)
    assert await batcher.translate(model, ["short"], GREEDY) == [expected("short", GREEDY)]
    assert not long_task.done()
    assert await long_task == [expected(long, GREEDY)]
    assert [[e.sentence for e in started] for started in model.searched] == [[long], ["short"]]
    assert len(model.streams) == 2  # "short" did not join the long sentence's search


async def test_a_failure_in_one_worker_spares_the_other(make_batcher: MakeBatcher) -> None:
    model = FakeModel(fail_with=ValueError("model exploded"), fail_with_sentence="bad")
    model.gate.clear()
    batcher = await make_batcher(workers=2, max_wait_s=0.05)
    bad = asyncio.create_task(batcher.translate(model, ["bad"], GREEDY))
    good = asyncio.create_task(batcher.translate(model, ["good"], GREEDY))
    await wait_until(lambda: model.running == 2)
    model.gate.set()
    with pytest.raises(ValueError, match="exploded"):
        await bad
    assert await good == [expected("good", GREEDY)]
    assert await batcher.translate(model, ["again"], GREEDY) == [expected("again", GREEDY)]


async def test_close_drains_every_worker() -> None:
    model = FakeModel(words_per_advance=1, advance_seconds=0.01)
    batcher: DynamicBatcher[str] = DynamicBatcher(workers=3, max_wait_s=0.01)
    await batcher.start()
    tasks = [
        asyncio.create_task(batcher.translate(model, [f"d{i} " + "w " * i], GREEDY))
        for i in range(9)
    ]
    await wait_until(lambda: len(model.streams) == 3)
    await batcher.close(timeout_s=10)
    assert [(await t)[0] for t in tasks] == [
        expected(f"d{i} " + "w " * i, GREEDY) for i in range(9)
    ]
    with pytest.raises(BatcherClosedError):
        await batcher.translate(model, ["late"], GREEDY)


def test_workers_must_be_positive() -> None:
    with pytest.raises(ValueError, match="workers"):
        DynamicBatcher(workers=0)
