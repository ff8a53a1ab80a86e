"""Markdown → WhatsApp formatting, and splitting long text to a provider's limit.

WhatsApp has its own light markup: ``*bold*``, ``_italic_``, ``~strikethrough~``,
```` ```monospace``` ````, `` `inline code` ``, ``> quote`` and ``- ``/``1. `` lists. Language
models and people write Markdown; :func:`to_whatsapp` converts the common parts::

    >>> to_whatsapp("## Plan\\n**Bold**, *it*, ~~gone~~ and [docs](https://example.com)")
    '*Plan*\\n*Bold*, _it_, ~gone~ and docs (https://example.com)'

:func:`split` cuts text that is longer than a provider accepts (Meta 4096, Twilio 1600
characters) at paragraph, line, sentence, then word boundaries — never inside a URL, a code
block or a formatting span unless a single one is longer than the limit::

    >>> split("First paragraph.\\n\\nSecond one.", 20)
    ['First paragraph.', 'Second one.']
"""

from __future__ import annotations

import re
from collections.abc import Callable

__all__ = ["META_TEXT_LIMIT", "TWILIO_TEXT_LIMIT", "split", "to_whatsapp"]

#: Longest text body Meta accepts.
META_TEXT_LIMIT = 4096
#: Longest ``Body`` Twilio accepts.
TWILIO_TEXT_LIMIT = 1600

# --------------------------------------------------------------------------------------------
# Markdown → WhatsApp
# --------------------------------------------------------------------------------------------
_FENCE = re.compile(r"^\s{0,3}(```|~~~)")
_HEADING = re.compile(r"^\s{0,3}#{1,6}[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
_RULE = re.compile(r"^\s{0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$")
_BULLET = re.compile(r"^(\s*)[-*+][ \t]+(.*)$")
_INLINE_CODE = re.compile(r"`[^`\n]+`")
_IMAGE = re.compile(r"!\[([^\]\n]*)\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_LINK = re.compile(r"\[([^\]\n]+)\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_AUTOLINK = re.compile(r"<((?:https?|mailto):[^>\s]+)>")
_BARE_URL = re.compile(r"(?:https?://|www\.)[^\s<>]+", re.IGNORECASE)
_BOLD_ITALIC = re.compile(r"(\*\*\*|___)(?=\S)(.+?)(?<=\S)\1")
_BOLD = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_ITALIC_STAR = re.compile(r"(?<![\w*])\*(?=[^\s*])(.+?)(?<=[^\s*])\*(?![\w*])")
_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")

# Private-use characters mark protected text while the inline rules run.
_OPEN, _CLOSE, _BOLD_MARK = "\ue000", "\ue001", "\ue002"
_TOKEN = re.compile(_OPEN + r"(\d+)" + _CLOSE)


def to_whatsapp(markdown: str) -> str:
    """Convert common Markdown to WhatsApp formatting.

    * ``**bold**`` / ``__bold__`` → ``*bold*``; ``*italic*`` / ``_italic_`` → ``_italic_``;
      ``***both***`` → ``*_both_*``; ``~~strike~~`` → ``~strike~``.
    * ``# Heading`` (any level) → ``*Heading*``.
    * ``- item`` / ``* item`` / ``+ item`` → ``• item`` (indentation kept); numbered lists and
      ``> quotes`` are already WhatsApp syntax and stay.
    * ``[text](url)`` → ``text (url)`` (just ``url`` when the text is the URL);
      ``![alt](url)`` → ``alt: url``; ``<https://…>`` → the URL.
    * Fenced code blocks keep their content verbatim (````` ``` ````` fences, language dropped);
      inline code and URLs are never reformatted (``snake_case`` in a URL stays).
    * Horizontal rules become an empty line.
    """
    out: list[str] = []
    in_fence: str | None = None
    for line in markdown.split("\n"):
        fence = _FENCE.match(line)
        if in_fence is not None:
            if fence and fence.group(1) == in_fence:
                in_fence = None
                out.append("```")
            else:
                out.append(line)
            continue
        if fence:
            in_fence = fence.group(1)
            out.append("```")
            continue
        out.append(_convert_line(line))
    if in_fence is not None:  # unterminated fence: close it so WhatsApp renders monospace
        out.append("```")
    return "\n".join(out)


def _convert_line(line: str) -> str:
    if _RULE.match(line):
        return ""
    heading = _HEADING.match(line)
    if heading:
        title = re.sub(r"(\*\*|__)", "", heading.group(1)).strip()
        return f"*{_inline(title)}*" if title else ""
    bullet = _BULLET.match(line)
    if bullet:
        return f"{bullet.group(1)}• {_inline(bullet.group(2))}"
    return _inline(line)


def _inline(text: str) -> str:
    saved: list[str] = []

    def protect(value: str) -> str:
        saved.append(value)
        return f"{_OPEN}{len(saved) - 1}{_CLOSE}"

    def keep(pattern: re.Pattern[str], render: Callable[[re.Match[str]], str]) -> None:
        nonlocal text
        text = pattern.sub(lambda m: protect(render(m)), text)

    keep(_INLINE_CODE, lambda m: m.group(0))
    keep(_IMAGE, lambda m: f"{m.group(1)}: {m.group(2)}" if m.group(1).strip() else m.group(2))
    text = _LINK.sub(lambda m: _link(m, protect), text)
    keep(_AUTOLINK, lambda m: m.group(1))
    keep(_BARE_URL, lambda m: m.group(0))
    text = _BOLD_ITALIC.sub(lambda m: f"{_BOLD_MARK}_{m.group(2)}_{_BOLD_MARK}", text)
    text = _BOLD.sub(lambda m: f"{_BOLD_MARK}{m.group(2)}{_BOLD_MARK}", text)
    text = _ITALIC_STAR.sub(lambda m: f"_{m.group(1)}_", text)
    text = _STRIKE.sub(lambda m: f"~{m.group(1)}~", text)
    text = text.replace(_BOLD_MARK, "*")
    # Restore innermost-first: a link label may itself hold protected pieces.
    while _TOKEN.search(text):
        text = _TOKEN.sub(lambda m: saved[int(m.group(1))], text)
    return text


def _link(match: re.Match[str], protect: Callable[[str], str]) -> str:
    label, url = match.group(1).strip(), match.group(2)
    if not label or label == url or label.removeprefix("mailto:") == url.removeprefix("mailto:"):
        return protect(url)
    return f"{label} ({protect(url)})"


# --------------------------------------------------------------------------------------------
# Splitting
# --------------------------------------------------------------------------------------------
# Spans a cut must not fall inside (start < cut < end).
_NO_CUT = (
    re.compile(r"```.*?```", re.DOTALL),
    _INLINE_CODE,
    _BARE_URL,
    re.compile(r"\*(?=[^\s*])[^*\n]*?(?<=[^\s*])\*"),
    re.compile(r"(?<!\w)_(?=[^\s_])[^_\n]*?(?<=[^\s_])_(?!\w)"),
    re.compile(r"~(?=[^\s~])[^~\n]*?(?<=[^\s~])~"),
)
_PARAGRAPH = re.compile(r"\n[ \t]*\n")
_LINE = re.compile(r"\n")
_SENTENCE = re.compile("[.!?\u2026\u3002][)\\]\"'\u00bb\u201d\u2019]*(?=\\s)")
_SPACE = re.compile(r"\s")


def split(text: str, limit: int) -> list[str]:
    """Cut ``text`` into parts of at most ``limit`` characters, in order.

    Boundaries are preferred in this order: paragraph (blank line), line break, sentence end,
    word (whitespace); a cut never falls inside a URL, a code span/block or a ``*``/``_``/``~``
    formatting span, unless a single one is longer than ``limit`` (then it is cut hard). The
    whitespace at a cut is dropped, so ``"\\n\\n".join(parts)`` reads like the original and
    joining the parts with the dropped whitespace gives the input back.

    Text that already fits is returned unchanged as ``[text]``; blank text gives ``[]``.

    Example::

        for part in split(reply, 1600):   # Twilio
            ...
    """
    if limit < 1:
        raise ValueError(f"limit must be at least 1, not {limit}")
    if not text.strip():
        return []
    if len(text) <= limit:
        return [text]
    blocked = _blocked(text)
    end = len(text.rstrip())
    start = _skip_space(text, 0)
    parts: list[str] = []
    while end - start > limit:
        cut = _find_cut(text, start, start + limit, blocked)
        part = text[start:cut].rstrip()
        if part:
            parts.append(part)
        start = _skip_space(text, cut)
    if start < end:
        parts.append(text[start:end])
    return parts


def _skip_space(text: str, index: int) -> int:
    while index < len(text) and text[index].isspace():
        index += 1
    return index


def _blocked(text: str) -> bytearray:
    """``blocked[i]`` is 1 when cutting before character ``i`` would break a span."""
    blocked = bytearray(len(text) + 1)
    for pattern in _NO_CUT:
        for match in pattern.finditer(text):
            start, stop = match.span()
            if stop - start > 1:
                blocked[start + 1 : stop] = b"\x01" * (stop - start - 1)
    return blocked


def _find_cut(text: str, start: int, stop: int, blocked: bytearray) -> int:
    """Best cut in ``(start, stop]``: the latest boundary of the best kind available."""
    window = text[start : stop + 1]  # +1: a boundary may sit right after the last character
    min_len = (stop - start) // 3
    boundaries = (
        [start + m.start() for m in _PARAGRAPH.finditer(window)],
        [start + m.start() for m in _LINE.finditer(window)],
        [start + m.end() for m in _SENTENCE.finditer(window)],
        [start + m.start() for m in _SPACE.finditer(window)],
    )
    for minimum in (start + min_len, start):
        for candidates in boundaries:
            for cut in reversed(candidates):
                if minimum < cut <= stop and not blocked[cut] and text[start:cut].strip():
                    return cut
    # No boundary: cut inside a word, still outside spans if possible.
    for cut in range(stop, start, -1):
        if not blocked[cut]:
            return cut
    return stop
