"""Greedy and beam search: agreement between paths, back-pointer correctness, limits."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from model.nn.seq2seq import Seq2Seq
from model.search.decode import SearchResult, beam_search, greedy_search, max_target_lengths
from model.search.options import SearchOptions
from model.search.steps import ban_loops, row_topk
from model.text.tokenizer import BOS_ID, EOS_ID, PAD_ID, Tokenizers
from tests.conftest import tiny_config

SOURCES = [
    "i love the cat",
    "we see a big house today",
    "dog",
    "the small country",
    "you like the big city today i see",
]
MAX_LEN = 12


@pytest.fixture(scope="module")
def flat_model(tiny_tokenizers: Tokenizers) -> Seq2Seq:
    """Freshly initialised: near-uniform outputs, so hypotheses run to ``max_len``."""
    torch.manual_seed(0)
    return Seq2Seq(tiny_config(tiny_tokenizers)).eval()


def batch_of(tokenizers: Tokenizers, sentences: list[str]) -> tuple[Tensor, Tensor]:
    """``src: batch x src_len`` PAD-padded, ``src_lengths: batch``."""
    ids = [tokenizers.source.encode(sentence) for sentence in sentences]
    longest = max(len(row) for row in ids)
    src = torch.tensor([row + [PAD_ID] * (longest - len(row)) for row in ids])
    return src, torch.tensor([len(row) for row in ids])


def teacher_forced(
    model: Seq2Seq, src: Tensor, src_lengths: Tensor, tokens: list[int]
) -> tuple[float, Tensor]:
    """Sum of log-probabilities of ``tokens + [EOS]`` for one sentence (``src: 1 x src_len``),
    and the attention rows of ``tokens`` (``len(tokens) x src_len``), step by step."""
    encoder_output = model.encode(src, src_lengths)
    state = model.initial_state(encoder_output)
    total = 0.0
    rows = []
    for prev, target in zip([BOS_ID, *tokens], [*tokens, EOS_ID], strict=True):
        log_probs, state, weights = model.decode_step(torch.tensor([prev]), state, encoder_output)
        total += log_probs[0, target].item()
        rows.append(weights[0])
    return total, torch.stack(rows)[: len(tokens)]


def assert_same_results(left: SearchResult, right: SearchResult) -> None:
    assert left.tokens == right.tokens
    for left_scores, right_scores in zip(left.scores, right.scores, strict=True):
        assert left_scores == pytest.approx(right_scores, abs=1e-4)
    if left.attention is not None and right.attention is not None:
        for left_rows, right_rows in zip(left.attention, right.attention, strict=True):
            for a, b in zip(left_rows, right_rows, strict=True):
                torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("model_name", ["flat_model", "peaked_model"])
def test_beam_of_one_equals_greedy(
    request: pytest.FixtureRequest, model_name: str, tiny_tokenizers: Tokenizers
) -> None:
    model = request.getfixturevalue(model_name)
    src, lengths = batch_of(tiny_tokenizers, SOURCES)
    greedy = greedy_search(model, src, lengths, MAX_LEN, SearchOptions(attention=True))
    beam = beam_search(model, src, lengths, MAX_LEN, SearchOptions(beam=1, attention=True))
    assert_same_results(greedy, beam)


@pytest.mark.parametrize("beam_size", [1, 4])
def test_batch_equals_each_sentence_alone(
    peaked_model: Seq2Seq, tiny_tokenizers: Tokenizers, beam_size: int
) -> None:
    src, lengths = batch_of(tiny_tokenizers, SOURCES)
    batched = beam_search(
        peaked_model, src, lengths, MAX_LEN, SearchOptions(beam=beam_size, n_best=beam_size)
    )
    for i, sentence in enumerate(SOURCES):
        alone_src, alone_lengths = batch_of(tiny_tokenizers, [sentence])
        alone = beam_search(
            peaked_model,
            alone_src,
            alone_lengths,
            MAX_LEN,
            SearchOptions(beam=beam_size, n_best=beam_size),
        )
        assert alone.tokens[0] == batched.tokens[i]
        assert alone.scores[0] == pytest.approx(batched.scores[i], abs=1e-4)


def test_greedy_batch_equals_each_sentence_alone(
    flat_model: Seq2Seq, tiny_tokenizers: Tokenizers
) -> None:
    src, lengths = batch_of(tiny_tokenizers, SOURCES)
    batched = greedy_search(flat_model, src, lengths, MAX_LEN)
    for i, sentence in enumerate(SOURCES):
        alone = greedy_search(flat_model, *batch_of(tiny_tokenizers, [sentence]), MAX_LEN)
        assert alone.tokens[0] == batched.tokens[i]


def test_n_best_lists_are_sorted_distinct_and_complete(
    peaked_model: Seq2Seq, tiny_tokenizers: Tokenizers
) -> None:
    src, lengths = batch_of(tiny_tokenizers, SOURCES)
    result = beam_search(peaked_model, src, lengths, MAX_LEN, SearchOptions(beam=5, n_best=5))
    lengths_seen: set[int] = set()
    for hypotheses, scores in zip(result.tokens, result.scores, strict=True):
        assert len(hypotheses) == len(scores) == 5
        assert scores == sorted(scores, reverse=True)
        assert len({tuple(h) for h in hypotheses}) == 5
        lengths_seen.update(len(h) for h in hypotheses)
    assert len(lengths_seen) > 1, "the fixture should produce hypotheses of several lengths"


@pytest.mark.parametrize("length_penalty", [0.0, 1.0])
def test_scores_and_attention_match_teacher_forcing(
    peaked_model: Seq2Seq, tiny_tokenizers: Tokenizers, length_penalty: float
) -> None:
    """Following the back-pointers must rebuild exactly the hypotheses that were scored."""
    src, lengths = batch_of(tiny_tokenizers, SOURCES)
    result = beam_search(
        peaked_model,
        src,
        lengths,
        MAX_LEN,
        SearchOptions(beam=4, n_best=4, length_penalty=length_penalty, attention=True),
    )
    assert result.attention is not None
    for i, (hypotheses, scores) in enumerate(zip(result.tokens, result.scores, strict=True)):
        one_src = src[i : i + 1, : int(lengths[i])]
        for tokens, score, attention in zip(hypotheses, scores, result.attention[i], strict=True):
            log_prob, expected_attention = teacher_forced(
                peaked_model, one_src, lengths[i : i + 1], tokens
            )
            assert score == pytest.approx(log_prob / (len(tokens) + 1) ** length_penalty, abs=1e-4)
            assert attention.shape == (len(tokens), int(lengths[i]))
            assert attention.dtype == torch.float32
            torch.testing.assert_close(attention, expected_attention, atol=1e-5, rtol=1e-4)


def test_beam_search_beats_or_matches_greedy_somewhere(
    peaked_model: Seq2Seq, tiny_tokenizers: Tokenizers
) -> None:
    src, lengths = batch_of(tiny_tokenizers, SOURCES)
    greedy = greedy_search(peaked_model, src, lengths, MAX_LEN)
    beam = beam_search(peaked_model, src, lengths, MAX_LEN, SearchOptions(beam=5))
    gains = [b[0] - g[0] for b, g in zip(beam.scores, greedy.scores, strict=True)]
    assert max(gains) > 1e-3
    assert min(gains) > -0.5  # beam search is not exact, but not far worse on this model


def test_length_penalty_reranks_the_same_finished_set(
    peaked_model: Seq2Seq, tiny_tokenizers: Tokenizers
) -> None:
    """Pruning uses raw log-probs, so the finished hypotheses are the same whatever the
    penalty, and the penalty only reranks them: a larger one never picks a shorter best."""
    src, lengths = batch_of(tiny_tokenizers, SOURCES)
    raw = beam_search(
        peaked_model, src, lengths, MAX_LEN, SearchOptions(beam=5, length_penalty=0.0)
    )
    long = beam_search(
        peaked_model, src, lengths, MAX_LEN, SearchOptions(beam=5, length_penalty=2.0)
    )
    longer_somewhere = False
    for raw_best, long_best in zip(raw.tokens, long.tokens, strict=True):
        assert len(long_best[0]) >= len(raw_best[0])
        longer_somewhere |= len(long_best[0]) > len(raw_best[0])
    assert longer_somewhere


def test_max_len_is_respected_per_sentence(
    flat_model: Seq2Seq, tiny_tokenizers: Tokenizers
) -> None:
    src, lengths = batch_of(tiny_tokenizers, SOURCES)
    limits = max_target_lengths(lengths, ratio=1.0, extra=1)
    for result in (
        greedy_search(flat_model, src, lengths, limits),
        beam_search(flat_model, src, lengths, limits, SearchOptions(beam=3, n_best=3)),
    ):
        for hypotheses, limit in zip(result.tokens, limits.tolist(), strict=True):
            # the flat model never prefers EOS, so every hypothesis runs to its limit
            assert [len(h) for h in hypotheses] == [limit] * len(hypotheses)
    zero = greedy_search(flat_model, src, lengths, 0)
    assert zero.tokens == [[[]] for _ in SOURCES]


def test_check_every_does_not_change_results(
    peaked_model: Seq2Seq, tiny_tokenizers: Tokenizers
) -> None:
    src, lengths = batch_of(tiny_tokenizers, SOURCES)
    every_step = beam_search(
        peaked_model, src, lengths, MAX_LEN, SearchOptions(beam=3, n_best=3), check_every=1
    )
    rarely = beam_search(
        peaked_model, src, lengths, MAX_LEN, SearchOptions(beam=3, n_best=3), check_every=50
    )
    assert_same_results(every_step, rarely)
    assert_same_results(
        greedy_search(peaked_model, src, lengths, MAX_LEN, check_every=1),
        greedy_search(peaked_model, src, lengths, MAX_LEN, check_every=50),
    )


def test_invalid_arguments(flat_model: Seq2Seq, tiny_tokenizers: Tokenizers) -> None:
    src, lengths = batch_of(tiny_tokenizers, SOURCES)
    with pytest.raises(ValueError, match="n_best"):
        beam_search(flat_model, src, lengths, MAX_LEN, SearchOptions(beam=2, n_best=3))
    with pytest.raises(ValueError, match="beam"):
        beam_search(flat_model, src, lengths, MAX_LEN, SearchOptions(beam=0))
    with pytest.raises(ValueError, match="max_len"):
        greedy_search(flat_model, src, lengths, torch.tensor([3, 4]))


# --------------------------------------------------------------------------- n-gram repeat block


@pytest.fixture(scope="module")
def repeating_model(tiny_tokenizers: Tokenizers) -> Seq2Seq:
    """A model that says one piece over and over (a large output bias on it) and ends late:
    the failure that the repeat block is for ("sữa sữa sữa sữa ...")."""
    torch.manual_seed(0)
    model = Seq2Seq(tiny_config(tiny_tokenizers)).eval()
    with torch.no_grad():
        model.decoder.output.bias[EOS_ID + 10] = 6.0
        model.decoder.output.bias[EOS_ID] = -6.0
    return model


def repeated_ngrams(tokens: list[int], n: int) -> list[tuple[int, ...]]:
    grams = [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
    return [gram for index, gram in enumerate(grams) if gram in grams[:index]]


@pytest.mark.parametrize("n", [1, 2, 3])
def test_the_repeat_block_leaves_no_repeated_ngram(
    repeating_model: Seq2Seq, tiny_tokenizers: Tokenizers, n: int
) -> None:
    src, lengths = batch_of(tiny_tokenizers, SOURCES)
    unblocked = greedy_search(repeating_model, src, lengths, MAX_LEN)
    assert all(repeated_ngrams(tokens[0], n) for tokens in unblocked.tokens)  # it does repeat
    for result in (
        greedy_search(repeating_model, src, lengths, MAX_LEN, SearchOptions(block_ngram_repeat=n)),
        beam_search(
            repeating_model,
            src,
            lengths,
            MAX_LEN,
            SearchOptions(beam=3, n_best=3, block_ngram_repeat=n),
        ),
    ):
        for hypotheses in result.tokens:
            assert hypotheses and all(tokens for tokens in hypotheses)
            for tokens in hypotheses:
                assert repeated_ngrams(tokens, n) == [], tokens
    # n=1: every piece at most once, so the hypothesis is as long as before but all distinct
    if n == 1:
        blocked = greedy_search(
            repeating_model, src, lengths, MAX_LEN, SearchOptions(block_ngram_repeat=1)
        )
        assert all(len(set(t[0])) == len(t[0]) > 1 for t in blocked.tokens)


@pytest.mark.parametrize("model_name", ["flat_model", "peaked_model", "repeating_model"])
@pytest.mark.parametrize("n", [1, 2])
def test_beam_of_one_equals_greedy_with_the_repeat_block(
    request: pytest.FixtureRequest, model_name: str, tiny_tokenizers: Tokenizers, n: int
) -> None:
    model = request.getfixturevalue(model_name)
    src, lengths = batch_of(tiny_tokenizers, SOURCES)
    greedy = greedy_search(
        model,
        src,
        lengths,
        MAX_LEN,
        SearchOptions(attention=True, block_ngram_repeat=n),
        check_every=1,
    )
    beam = beam_search(
        model, src, lengths, MAX_LEN, SearchOptions(beam=1, attention=True, block_ngram_repeat=n)
    )
    assert_same_results(greedy, beam)
    # Sentences leaving the batch early take their history rows with them, correctly.
    batched = beam_search(model, src, lengths, MAX_LEN, SearchOptions(beam=3, block_ngram_repeat=n))
    for i, sentence in enumerate(SOURCES):
        alone = beam_search(
            model,
            *batch_of(tiny_tokenizers, [sentence]),
            MAX_LEN,
            SearchOptions(beam=3, block_ngram_repeat=n),
        )
        assert alone.tokens[0] == batched.tokens[i]


def test_the_repeat_block_is_off_by_default_and_rejects_negative_values(
    peaked_model: Seq2Seq, tiny_tokenizers: Tokenizers
) -> None:
    src, lengths = batch_of(tiny_tokenizers, SOURCES)
    assert_same_results(
        beam_search(peaked_model, src, lengths, MAX_LEN, SearchOptions(beam=3)),
        beam_search(
            peaked_model, src, lengths, MAX_LEN, SearchOptions(beam=3, block_ngram_repeat=0)
        ),
    )
    with pytest.raises(ValueError, match="block_ngram_repeat"):
        greedy_search(peaked_model, src, lengths, MAX_LEN, SearchOptions(block_ngram_repeat=-1))
    with pytest.raises(ValueError, match="block_ngram_repeat"):
        beam_search(
            peaked_model, src, lengths, MAX_LEN, SearchOptions(beam=2, block_ngram_repeat=-1)
        )


# --------------------------------------------------------------------------- loop guard


def third_copies(tokens: list[int], longest_span: int) -> list[tuple[int, ...]]:
    """The spans of up to ``longest_span`` pieces that ``tokens`` holds three times in a row."""
    found = []
    for span in range(1, longest_span + 1):
        for start in range(len(tokens) - 3 * span + 1):
            copy = tokens[start : start + span]
            if (
                tokens[start + span : start + 2 * span]
                == tokens[start + 2 * span : start + 3 * span]
                == copy
            ):
                found.append(tuple(copy))
    return found


def test_ban_loops_bans_the_start_of_a_third_copy_only() -> None:
    a, b, c = 7, 8, 9
    history = torch.tensor(
        [
            [c, c, a, a],  # "a a": a third "a" is a loop
            [c, a, b, a],  # no repeat yet
            [a, b, a, b],  # "ab ab": a third copy would start with a
            [a, a, a, a],  # spans 1 and 2 both name a: still banned
            [PAD_ID, PAD_ID, c, a],  # leading PAD is no copy
        ]
    )
    log_probs = torch.log_softmax(torch.zeros(5, 12), dim=-1)
    before = log_probs.clone()
    banned = ban_loops(log_probs, history, longest_span=2) == float("-inf")
    assert banned.sum(dim=1).tolist() == [1, 0, 1, 1, 0]
    assert banned[0, a] and banned[2, a] and banned[3, a]
    unbanned = ~banned
    assert torch.equal(log_probs[unbanned], before[unbanned])
    # span 1 only: "ab ab" is not seen, and a short history bans nothing
    assert not (ban_loops(before.clone(), history, 1)[2] == float("-inf")).any()
    assert torch.equal(ban_loops(before.clone(), history[:, :1], 4), before)


def test_ban_loops_bans_what_a_row_by_row_reading_bans() -> None:
    """Random histories (short vocabularies, so copies are common; PAD before some rows):
    exactly the tokens that start a third copy of a span of up to k tokens are banned."""
    generator = torch.Generator().manual_seed(4)
    for _ in range(300):
        rows, steps = 6, int(torch.randint(0, 12, (1,), generator=generator))
        history = torch.randint(4, 7, (rows, steps), generator=generator)
        for row, padding in enumerate(torch.randint(0, steps + 1, (rows,), generator=generator)):
            history[row, : int(padding)] = PAD_ID
        for k in range(5):
            banned = ban_loops(torch.zeros(rows, 8), history, k) == float("-inf")
            for row, tokens in enumerate(history.tolist()):
                expected = {
                    tokens[-span]
                    for span in range(1, min(k, steps // 2) + 1)
                    if tokens[-span:] == tokens[-2 * span : -span] and tokens[-2 * span] != PAD_ID
                }
                assert set(banned[row].nonzero().view(-1).tolist()) == expected


def test_the_loop_guard_leaves_no_third_copy(
    repeating_model: Seq2Seq, tiny_tokenizers: Tokenizers
) -> None:
    src, lengths = batch_of(tiny_tokenizers, SOURCES)
    unguarded = greedy_search(repeating_model, src, lengths, MAX_LEN)
    assert all(third_copies(tokens[0], 1) for tokens in unguarded.tokens)  # it does loop
    for result in (
        greedy_search(repeating_model, src, lengths, MAX_LEN, SearchOptions(block_loops=4)),
        beam_search(
            repeating_model, src, lengths, MAX_LEN, SearchOptions(beam=3, n_best=3, block_loops=4)
        ),
    ):
        for hypotheses in result.tokens:
            assert hypotheses and all(tokens for tokens in hypotheses)
            for tokens in hypotheses:
                assert third_copies(tokens, 4) == [], tokens


@pytest.mark.parametrize("model_name", ["flat_model", "peaked_model", "repeating_model"])
def test_beam_of_one_equals_greedy_with_the_loop_guard(
    request: pytest.FixtureRequest, model_name: str, tiny_tokenizers: Tokenizers
) -> None:
    model = request.getfixturevalue(model_name)
    src, lengths = batch_of(tiny_tokenizers, SOURCES)
    greedy = greedy_search(
        model, src, lengths, MAX_LEN, SearchOptions(block_loops=3), check_every=1
    )
    assert_same_results(
        greedy, beam_search(model, src, lengths, MAX_LEN, SearchOptions(beam=1, block_loops=3))
    )
    with pytest.raises(ValueError, match="block_loops"):
        greedy_search(model, src, lengths, MAX_LEN, SearchOptions(block_loops=-1))
    with pytest.raises(ValueError, match="block_loops"):
        beam_search(model, src, lengths, MAX_LEN, SearchOptions(beam=2, block_loops=-1))


@pytest.mark.parametrize(("rows", "length", "k"), [(7, 8000, 10), (3, 6000, 2), (5, 300, 10)])
def test_row_topk_is_topk(rows: int, length: int, k: int) -> None:
    generator = torch.Generator().manual_seed(rows)
    values = torch.log_softmax(torch.randn(rows, length, generator=generator) * 3, dim=-1)
    values[:, :3] = float("-inf")
    values[0, 4000 % length] = values[0].max()  # a tie at the top
    values[1] = float("-inf")  # a row that may only end:
    values[1, 2 % length + 3] = -0.5
    expected_values, expected_index = values.topk(k, dim=-1)
    found_values, found_index = row_topk(values, k)
    assert torch.equal(found_values, expected_values)
    assert torch.equal(values.gather(1, found_index), found_values)
    finite = torch.isfinite(expected_values)
    assert torch.equal(  # the same tokens, up to the order of equal values
        found_index.masked_fill(~finite, -1).sort(dim=-1).values,
        expected_index.masked_fill(~finite, -1).sort(dim=-1).values,
    )
