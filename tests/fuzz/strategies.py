"""Shared hypothesis strategies: JSON values (as a signed message may carry), deep nesting."""

from __future__ import annotations

from hypothesis import strategies as st

# ints reach far past 64 bits: SQLite and PostgreSQL columns must not see them unchecked
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(-(2**70), 2**70),
                    st.text(max_size=40), st.sampled_from(["", "2026-11-15T02:00:00Z", "x" * 300, "\x00", "∞"]))
JSON = st.recursive(SCALARS, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=10), c, max_size=4),
                    max_leaves=12)


def nested(depth: int, opener: str = "[", closer: str = "]") -> str:
    return opener * depth + closer * depth


DEEP_JSON = st.sampled_from([nested(5000), nested(100_000), '{"a":' * 5000 + "1" + "}" * 5000])


def maybe(valid, p_garbage: bool = True):
    """The valid value most of the time, any JSON value otherwise."""
    return st.one_of(valid, valid, valid, JSON) if p_garbage else valid


def near(fields: dict) -> st.SearchStrategy[dict]:
    """A dict shaped like `fields` (key -> strategy), each value sometimes garbage, keys sometimes
    dropped, sometimes an extra key."""
    base = st.fixed_dictionaries({k: maybe(v) for k, v in fields.items()})
    return st.tuples(base, st.sets(st.sampled_from(sorted(fields)), max_size=2),
                     st.dictionaries(st.text(max_size=8), JSON, max_size=2)).map(
        lambda t: {**{k: v for k, v in t[0].items() if k not in t[1]}, **t[2]})
