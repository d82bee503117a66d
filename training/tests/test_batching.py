import random

from argtrain.batching import token_budget_batches


def test_token_budget_batches_respect_the_budget():
    rng = random.Random(0)
    lengths = [rng.randint(5, 300) for _ in range(500)]
    batches = token_budget_batches(lengths, 2048, max_batch=32, rng=random.Random(1))
    assert sorted(i for b in batches for i in b) == list(range(500))
    for b in batches:
        assert len(b) <= 32 and (len(b) == 1 or len(b) * max(lengths[i] for i in b) <= 2048)
    # Sorting by length keeps padding low.
    padded = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    assert padded < 1.15 * sum(lengths)


def test_unshuffled_batches_are_length_sorted_and_within_budget():
    lengths = [5, 100, 7, 50, 6, 8]
    batches = token_budget_batches(lengths, 120, max_batch=3, shuffle=False)
    assert sorted(i for b in batches for i in b) == list(range(6))
    flat = [lengths[i] for b in batches for i in b]
    assert flat == sorted(flat)
    assert all(len(b) <= 3 and max(lengths[i] for i in b) * len(b) <= 120 or len(b) == 1
               for b in batches)
