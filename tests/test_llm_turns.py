"""Role normalisation and <think> stripping: the shapes every backend accepts."""

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from events.model import ChatTurn
from pipeline.llm import normalize_turns, strip_think


def turns(*pairs: tuple[str, str]) -> list[ChatTurn]:
    return [ChatTurn(role, content) for role, content in pairs]  # type: ignore[arg-type]


def test_valid_conversation_is_unchanged() -> None:
    convo = turns(("system", "Be brief."), ("user", "hi"), ("assistant", "hello"), ("user", "ok?"))
    assert normalize_turns(convo) == convo


def test_system_text_is_hoisted_and_merged() -> None:
    convo = turns(
        ("system", "A"), ("user", "q"), ("system", "B"), ("assistant", "a"), ("user", "r")
    )
    assert normalize_turns(convo) == turns(
        ("system", "A\n\nB"), ("user", "q"), ("assistant", "a"), ("user", "r")
    )


def test_blank_system_text_is_dropped() -> None:
    assert normalize_turns(turns(("system", "  "), ("user", "q"))) == turns(("user", "q"))


def test_consecutive_same_role_turns_are_joined() -> None:
    convo = turns(
        ("user", "one"), ("user", "two"), ("assistant", "x"), ("assistant", "y"), ("user", "3")
    )
    assert normalize_turns(convo) == turns(
        ("user", "one\n\ntwo"), ("assistant", "x\n\ny"), ("user", "3")
    )


def test_leading_assistant_turn_is_dropped() -> None:
    convo = turns(("system", "S"), ("assistant", "Good morning!"), ("user", "hi"))
    assert normalize_turns(convo) == turns(("system", "S"), ("user", "hi"))


def test_trailing_assistant_turns_are_cut_so_the_user_speaks_last() -> None:
    convo = turns(("user", "hi"), ("assistant", "hello"), ("assistant", "anyone?"))
    assert normalize_turns(convo) == turns(("user", "hi"))


@pytest.mark.parametrize(
    "convo",
    [[], turns(("system", "S")), turns(("assistant", "a"), ("system", "S"))],
    ids=["empty", "system-only", "assistant-only"],
)
def test_no_user_turn_is_an_error(convo: list[ChatTurn]) -> None:
    with pytest.raises(ValueError, match="at least one user turn"):
        normalize_turns(convo)


roles = st.sampled_from(["system", "user", "assistant"])
conversations = st.lists(st.builds(ChatTurn, roles, st.text(max_size=5)), max_size=12)


@given(conversations)
def test_output_always_satisfies_perplexity_ordering_rules(convo: list[ChatTurn]) -> None:
    assume(any(t.role == "user" for t in convo))
    out = normalize_turns(convo)
    chat = out[1:] if out[0].role == "system" else out
    assert all(t.role != "system" for t in chat)
    assert [t.role for t in chat] == ["user", "assistant"] * (len(chat) // 2) + ["user"]
    assert normalize_turns(out) == out
    user_text = [t.content for t in convo if t.role == "user"]
    assert all(text in "\n\n".join(t.content for t in chat) for text in user_text)


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("<think>plan\nsteps</think>\n\nThe answer.", "The answer."),
        ("  \n<think>x</think>Answer", "Answer"),
        ("<think>cut off by max tokens", ""),
        ("No thinking here.", "No thinking here."),
        ("Answer <think>kept</think>", "Answer <think>kept</think>"),
        ("<think>a</think>B<think>c</think>", "B<think>c</think>"),
    ],
)
def test_strip_think(raw: str, clean: str) -> None:
    assert strip_think(raw) == clean
