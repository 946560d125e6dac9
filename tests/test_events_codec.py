"""Property: every event type survives the log's codec unchanged."""

from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from events.codec import CorruptEvent, decode, encode, type_name
from events.compaction import removed
from events.model import EVENT_TYPES, AnyEvent, Compacted, Event
from events.protocol import Selection, removal

# JSON has no NaN or infinity (msgspec writes them as null): events hold finite floats.
finite = st.floats(allow_nan=False, allow_infinity=False)
st.register_type_strategy(float, finite)
json_values: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers() | finite | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)
# Fields typed dict[str, Any] (config, params, by_type) get JSON-shaped values.
json_objects = st.dictionaries(st.text(), json_values, max_size=4)


def events_of(event_type: type[Event]) -> st.SearchStrategy[Event]:
    overrides = {
        f.name: json_objects for f in msgspec.structs.fields(event_type) if f.type == dict[str, Any]
    }
    return st.builds(event_type, **overrides)


@pytest.mark.parametrize("event_type", EVENT_TYPES, ids=lambda t: t.__name__)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_round_trip(event_type: type[Event], data: st.DataObject) -> None:
    event = data.draw(events_of(event_type))
    body = encode(event)
    assert decode(body) == event
    assert msgspec.json.decode(body)["type"] == type_name(event) == event_type.__name__


def test_catalogue_is_the_tagged_union() -> None:
    assert set(EVENT_TYPES) == set(AnyEvent.__args__)
    assert len({t.__name__ for t in EVENT_TYPES}) == len(EVENT_TYPES)


@pytest.mark.parametrize("body", ['{"type": "Nope"}', "not json", '{"type": "ReplySent"}'])
def test_undecodable_bodies_raise_one_error(body: str) -> None:
    with pytest.raises(CorruptEvent, match="undecodable event body"):
        decode(body)


def test_a_marker_from_an_older_version_decodes_and_says_it_cannot_tell_what_went() -> None:
    old = '{"type":"Compacted","chat":"","reason":"forget","before":9,"removed":4}'
    marker = decode(old)
    assert isinstance(marker, Compacted)
    assert (marker.before, marker.removed, marker.keep, marker.chats) == (9, 4, None, None)
    assert removal(marker) is None  # so the runner refolds
    new = removed(Selection(chats=frozenset({"a@s.whatsapp.net"})), "forget", [(3, "X", "a")])
    assert new is not None
    again = decode(encode(new))
    assert isinstance(again, Compacted)
    assert again == new
    assert removal(again) is not None
