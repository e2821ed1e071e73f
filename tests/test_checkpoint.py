"""``checkpoint.differences``: the one check of a stored artifact (a resumed run, a run folder,
a sweep's point, the supervised reference, a feature bank) against what would be made now."""

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from jepa_lite.checkpoint import _flat, differences

_leaf = st.one_of(st.integers(-3, 3), st.booleans(), st.none(), st.text("ab", max_size=2),
                  st.lists(st.integers(0, 2), max_size=3))
_tree = st.recursive(st.dictionaries(st.text("xyz", min_size=1, max_size=2), _leaf, max_size=4),
                     lambda inner: st.dictionaries(st.text("xyz", min_size=1, max_size=2),
                                                   inner, max_size=3), max_leaves=12)


@settings(max_examples=200, deadline=None)
@given(_tree, st.data())
def test_differences_name_exactly_the_keys_that_changed(stored, data):
    """Nothing for the same thing (tuples equal to lists); after one leaf is changed,
    exactly that key, with both values, either way round; an ignored key never."""
    assert differences(stored, stored) == []
    assert differences(stored, json.loads(json.dumps(stored))) == []
    as_tuples = {k: tuple(v) if isinstance(v, list) else v for k, v in stored.items()}
    assert differences(stored, as_tuples) == []
    flat = _flat(stored)
    if not flat:
        return
    key = data.draw(st.sampled_from(sorted(flat)))
    changed = json.loads(json.dumps(stored))
    node, *path = key.split(".")
    target = changed
    for part in [node, *path][:-1]:
        target = target[part]
    target[[node, *path][-1]] = "changed"
    assert differences(stored, changed) == [(key, flat[key], "changed")]
    assert differences(stored, changed, ignore=(key,)) == []
    assert differences(changed, stored) == [(key, "changed", flat[key])]
    top = node  # a key the stored artifact has and what would be made now lacks: named too
    dropped = {k: v for k, v in stored.items() if k != top}  # (missing reads as None)
    assert {k for k, _, now in differences(stored, dropped)} == {
        k for k, v in flat.items() if (k == top or k.startswith(top + ".")) and v is not None}
