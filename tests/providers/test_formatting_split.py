"""Markdown → WhatsApp conversion and splitting to a provider's limit (with property tests)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eki_whatsapp.formatting import split, to_whatsapp


@pytest.mark.parametrize(
    ("markdown", "whatsapp"),
    [
        ("**bold**", "*bold*"),
        ("__bold__", "*bold*"),
        ("*italic* and _italic_", "_italic_ and _italic_"),
        ("***both***", "*_both_*"),
        ("~~gone~~", "~gone~"),
        ("# Title", "*Title*"),
        ("### **Already bold** ##", "*Already bold*"),
        ("- one\n* two\n+ three\n  - nested", "• one\n• two\n• three\n  • nested"),
        ("1. first\n2. second", "1. first\n2. second"),
        ("> quoted", "> quoted"),
        ("[docs](https://example.com/a_b_c)", "docs (https://example.com/a_b_c)"),
        ("[https://example.com](https://example.com)", "https://example.com"),
        ("![a cat](https://example.com/cat.png)", "a cat: https://example.com/cat.png"),
        ("<https://example.com/x>", "https://example.com/x"),
        ("see https://example.com/__init__.py now", "see https://example.com/__init__.py now"),
        ("`**not bold**` but **bold**", "`**not bold**` but *bold*"),
        ("```python\n**x** = 1\n```", "```\n**x** = 1\n```"),
        ("a * b * c", "a * b * c"),
        ("snake_case_name", "snake_case_name"),
        ("---", ""),
        ("**[link](https://e.com)**", "*link (https://e.com)*"),
    ],
)
def test_to_whatsapp(markdown: str, whatsapp: str) -> None:
    assert to_whatsapp(markdown) == whatsapp


def test_short_text_is_returned_unchanged() -> None:
    assert split("  hello  ", 100) == ["  hello  "]
    assert split("   ", 10) == []
    assert split("", 10) == []


def test_paragraph_boundary_is_preferred() -> None:
    text = "A first paragraph here. It has two sentences.\n\nSecond paragraph."
    assert split(text, 50) == ["A first paragraph here. It has two sentences.", "Second paragraph."]


def test_sentence_then_word_boundaries() -> None:
    assert split("One sentence here. Another one follows here.", 30) == [
        "One sentence here.",
        "Another one follows here.",
    ]
    assert split("alpha beta gamma delta epsilon", 12) == ["alpha beta", "gamma delta", "epsilon"]


def test_never_inside_a_url_or_formatting_span() -> None:
    url = "https://example.com/a/very/long/path?q=1"
    text = f"Read this {url} now please"
    parts = split(text, len("Read this ") + len(url) + 2)
    assert url in parts[0] or url in parts[1]
    assert all(url in p or "example.com" not in p for p in parts)
    bold = "*bold words stay together*"
    parts = split(f"some text {bold} end", 30)
    assert any(bold in p for p in parts)


def test_hard_cut_when_a_word_is_longer_than_the_limit() -> None:
    assert split("x" * 25, 10) == ["x" * 10, "x" * 10, "x" * 5]


def test_invalid_limit() -> None:
    with pytest.raises(ValueError, match="limit"):
        split("text", 0)


def _rejoin_check(text: str, parts: list[str]) -> None:
    """The parts, in order, are the text with only whitespace removed between them."""
    pos = 0
    for part in parts:
        while pos < len(text) and text[pos].isspace() and not text.startswith(part, pos):
            pos += 1
        assert text.startswith(part, pos), (part, text[pos : pos + 40])
        pos += len(part)
    assert text[pos:].strip() == ""


words = st.one_of(
    st.text(
        alphabet=st.characters(blacklist_categories=("Cs", "Zs", "Cc", "Zl", "Zp")), min_size=1, max_size=15
    ),
    st.sampled_from(
        ["https://example.com/a_b?c=d", "*bold span*", "_it_", "~x~", "`code here`", "end.", "Why?", "ok!"]
    ),
)
separators = st.sampled_from([" ", " ", " ", "\n", "\n\n", "  "])
texts = st.lists(st.tuples(words, separators), max_size=120).map(
    lambda pairs: "".join(w + s for w, s in pairs)
)
# Words with no span delimiter of their own: a stray backtick or asterisk pairs with the next one
# (as WhatsApp reads it), so "`code here`" after a stray "`" is not a span any more.
plain_words = st.one_of(
    st.text(
        alphabet=st.characters(
            blacklist_categories=("Cs", "Zs", "Cc", "Zl", "Zp"), blacklist_characters="`*_~"
        ),
        min_size=1,
        max_size=15,
    ),
    st.sampled_from(["https://example.com/a_b?c=d", "*bold span*", "`code here`", "end.", "Why?", "ok!"]),
)
plain_texts = st.lists(st.tuples(plain_words, separators), max_size=120).map(
    lambda pairs: "".join(w + s for w, s in pairs)
)


@settings(max_examples=300, deadline=None)
@given(text=texts, limit=st.integers(min_value=1, max_value=200))
def test_split_property(text: str, limit: int) -> None:
    parts = split(text, limit)
    assert all(len(p) <= limit for p in parts)
    assert all(p.strip() for p in parts)
    _rejoin_check(text, parts)
    assert re.sub(r"\s+", "", "".join(parts)) == re.sub(r"\s+", "", text)


@settings(max_examples=100, deadline=None)
@given(text=plain_texts)
def test_split_keeps_spans_whole_when_they_fit(text: str) -> None:
    limit = 60
    parts = split(text, limit)
    for span in ("https://example.com/a_b?c=d", "*bold span*", "`code here`"):
        if span in text:
            assert sum(p.count(span) for p in parts) == text.count(span)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=300))
def test_to_whatsapp_never_crashes_and_keeps_words(markdown: str) -> None:
    out = to_whatsapp(markdown)
    assert isinstance(out, str)
    for word in re.findall(r"[A-Za-z0-9]{3,}", markdown):
        assert word in out


def test_a_stray_backtick_pairs_with_the_next_one_and_that_span_stays_whole() -> None:
    text = "0 0 ` 000000 00000000 https://example.com/a_b?c=d `code here` "
    parts = split(text, 60)
    # Read left to right, the code span is "` 000000 ... `"; "here`" is plain text after it.
    assert any("` 000000 00000000 https://example.com/a_b?c=d `" in p for p in parts)
    _rejoin_check(text, parts)
