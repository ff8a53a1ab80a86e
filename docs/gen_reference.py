"""API reference from docstrings, without extra packages.

Two faces of one renderer:

* an **mkdocs hook** (``hooks: [docs/gen_reference.py]`` in ``mkdocs.yml``): while the site is
  built, the marker ``<!-- api-reference -->`` in ``docs/reference.md`` is replaced by the reference
  of the installed package, so the page can never go stale;
* a **script**: ``python docs/gen_reference.py`` prints the same Markdown (``-o FILE`` writes it).

It imports the public modules, takes each one's ``__all__`` (or its public names defined there),
and renders signatures and docstrings; reST bits of the docstrings (``Example::`` blocks,
``:class:`X``` roles, double back-quotes) become Markdown.
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import importlib
import inspect
import re
import sys
from collections.abc import Iterable
from typing import Any

MARKER = "<!-- api-reference -->"
REFERENCE_PAGE = "reference.md"

#: (module, one-line summary) in the order they appear on the page.
MODULES: tuple[tuple[str, str], ...] = (
    ("eki_whatsapp", "The application object, settings, events, webhook types and stores."),
    ("eki_whatsapp.messages", "Outbound messages: text, media, templates, buttons, lists, ..."),
    ("eki_whatsapp.templates", "Templates managed from code: definitions, push, status, send by name."),
    ("eki_whatsapp.providers", "Meta Cloud API and Twilio clients and the provider error hierarchy."),
    ("eki_whatsapp.providers.base", "What a provider offers: the webhook reader and sender protocols."),
    ("eki_whatsapp.providers.meta", "Meta's Cloud API package: webhook reader, parser, sender."),
    ("eki_whatsapp.providers.twilio", "Twilio's package: webhook reader, parser, sender, Content Templates."),
    ("eki_whatsapp.addresses", "One way to read a WhatsApp address: `whatsapp:`, `+`, BSUIDs."),
    ("eki_whatsapp.routing", "The router: policy, 24-hour window, free allowance, failover."),
    ("eki_whatsapp.costs", "Dated price tables, the cost ledger and the monthly report."),
    ("eki_whatsapp.formatting", "Markdown to WhatsApp formatting and splitting long replies."),
    ("eki_whatsapp.agent", "The function-calling agent, tools, models and memory."),
    ("eki_whatsapp.testing", "Payload builders and fake provider APIs on 127.0.0.1."),
    ("eki_whatsapp.doctor", "Configuration and credential checks behind `eki-whatsapp doctor`."),
)

_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|attr|mod|data|exc|obj|const):`~?\.?([^`]+)`")
# reST inline literals: a run of 2+ back-quotes, the text, the same run (``x``, ```` ```x``` ````).
_LITERAL = re.compile(r"(`{2,})(?!`)(.+?)(?<!`)\1(?!`)")


# --- docstrings --------------------------------------------------------------------------------
def docstring_to_markdown(doc: str | None) -> str:
    """Turn a (reST-flavoured) docstring into Markdown.

    ``Example::`` followed by an indented block becomes ``Example:`` and a fenced Python block;
    ``:class:`Bot``` and ````x```` become inline code.
    """
    if not doc:
        return ""
    lines = inspect.cleandoc(doc).splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        section = _SECTION.match(line)
        if section and i + 1 < len(lines) and lines[i + 1].startswith((" ", "\t")):
            i = _google_section(section.group(1), lines, i + 1, out)
            continue
        if line.rstrip().endswith("::"):
            stripped = line.rstrip()
            head = stripped[:-2].rstrip()
            # "Example::" -> "Example:"; a lone "::" disappears.
            if head:
                out.append(_inline(head + ":" if not head.endswith(":") else head))
            block: list[str] = []
            i += 1
            while i < len(lines) and not lines[i].strip():
                i += 1
            while i < len(lines) and (not lines[i].strip() or lines[i].startswith((" ", "\t"))):
                block.append(lines[i])
                i += 1
            while block and not block[-1].strip():
                block.pop()
            if block:
                indent = min(len(b) - len(b.lstrip()) for b in block if b.strip())
                out.append("")
                out.append("```python")
                out.extend(b[indent:] for b in block)
                out.append("```")
                out.append("")
            continue
        out.append(_inline(line))
        i += 1
    return "\n".join(out).strip()


_SECTION = re.compile(
    r"^(Args|Arguments|Parameters|Keyword Args|Returns|Return|Raises|Attributes|Yields|Note|Notes):\s*$"
)
_ITEM = re.compile(r"^(\*{0,2}[\w.]+(?: \([^)]*\))?):\s*(.*)$")


def _google_section(title: str, lines: list[str], i: int, out: list[str]) -> int:
    """Render a Google-style section (``Args:`` and an indented block) as a bold title and a list."""
    block: list[str] = []
    while i < len(lines) and (not lines[i].strip() or lines[i].startswith((" ", "\t"))):
        block.append(lines[i])
        i += 1
    while block and not block[-1].strip():
        block.pop()
    indent = min(len(b) - len(b.lstrip()) for b in block if b.strip())
    out += ["", f"**{title}:**", ""]
    items: list[str] = []
    for raw in block:
        if not raw.strip():
            continue
        text = raw[indent:]
        item = _ITEM.match(text) if not text.startswith((" ", "\t")) else None
        if item and title not in ("Returns", "Return", "Yields", "Note", "Notes"):
            items.append(f"- `{item.group(1)}`: {_inline(item.group(2))}")
        elif items and (text.startswith((" ", "\t")) or title in ("Returns", "Return")):
            items[-1] += " " + _inline(text.strip())
        else:
            items.append(f"- {_inline(text.strip())}")
    out += items
    out.append("")
    return i


def _inline(text: str) -> str:
    text = _ROLE.sub(lambda m: f"`{m.group(1)}`", text)
    return _LITERAL.sub(_code_span, text)


def _code_span(match: re.Match[str]) -> str:
    """A Markdown code span for a reST literal, fenced by more back-quotes than it contains."""
    content = match.group(2)
    runs = [len(r) for r in re.findall(r"`+", content)]
    if not runs:
        return f"`{content}`"
    fence = "`" * (max(runs) + 1)
    return f"{fence} {content.strip()} {fence}"


# --- objects -----------------------------------------------------------------------------------
def public_names(module: Any) -> list[str]:
    """``module.__all__`` or, without it, the public names the module itself defines."""
    names = getattr(module, "__all__", None)
    if names is not None:
        return [n for n in names if not n.startswith("__")]
    result = []
    for name, obj in vars(module).items():
        if name.startswith("_") or inspect.ismodule(obj):
            continue
        if getattr(obj, "__module__", module.__name__).startswith(module.__name__):
            result.append(name)
    return sorted(result)


_QUOTED_ANNOTATION = re.compile(r"(:\s|->\s)'([^']*)'")
_OBJECT_REPR = re.compile(
    r"<(?:function|class|built-in function|built-in method) '?([\w.]+)'?(?: of [\w ]+)?(?: at 0x[0-9a-f]+)?>"
)
_ADDRESS = re.compile(r"<([\w.]+) object at 0x[0-9a-f]+>")


def _signature(obj: Any, name: str, wrap: int = 100) -> str:
    """``name(params) -> ret`` with string annotations unquoted; one parameter a line when long."""
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return f"{name}(...)"
    # Private keyword arguments (pydantic-settings' ``_env_file`` and the like) are left out.
    public = [p for p in sig.parameters.values() if not p.name.startswith("_")]
    if public and public[0].name in ("self", "cls") and not inspect.isclass(obj):
        public = public[1:]
    params = [_OBJECT_REPR.sub(r"\1", _QUOTED_ANNOTATION.sub(r"\1\2", str(p))) for p in public]
    # Re-insert the "/" and "*" markers that str(Parameter) does not carry.
    shown: list[str] = []
    kinds = [p.kind for p in public]
    for i, (text, kind) in enumerate(zip(params, kinds, strict=True)):
        if kind is inspect.Parameter.KEYWORD_ONLY and (
            i == 0 or kinds[i - 1] not in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.VAR_POSITIONAL)
        ):
            shown.append("*")
        shown.append(text)
        if kind is inspect.Parameter.POSITIONAL_ONLY and (
            i + 1 == len(kinds) or kinds[i + 1] is not inspect.Parameter.POSITIONAL_ONLY
        ):
            shown.append("/")
    ret = ""
    if sig.return_annotation is not inspect.Signature.empty:
        annotation = sig.return_annotation
        ret = " -> " + (annotation if isinstance(annotation, str) else inspect.formatannotation(annotation))
    one_line = f"{name}({', '.join(shown)}){ret}"
    if len(one_line) <= wrap or not shown:
        return one_line
    body = "".join(f"    {p},\n" for p in shown)
    return f"{name}(\n{body}){ret}"


def _kind(obj: Any) -> str:
    if inspect.isclass(obj):
        if issubclass(obj, BaseException):
            return "exception"
        if issubclass(obj, enum.Enum):
            return "enum"
        if dataclasses.is_dataclass(obj):
            return "dataclass"
        return "class"
    if inspect.iscoroutinefunction(obj):
        return "async function"
    if callable(obj):
        return "function"
    return "constant"


def _members(cls: type) -> Iterable[tuple[str, Any]]:
    """Public methods and properties defined on ``cls`` itself (not inherited)."""
    for name, raw in vars(cls).items():
        if name.startswith("_"):
            continue
        if isinstance(raw, (staticmethod, classmethod)):
            yield name, raw.__func__
        elif isinstance(raw, property) or inspect.isfunction(raw):
            yield name, raw


def _class_signature(cls: type, name: str) -> str:
    if issubclass(cls, enum.Enum):
        return f"class {name}"
    # pydantic models: the synthesised __init__ signature lists the fields.
    return "class " + _signature(cls, name)


def render_object(name: str, obj: Any, level: int = 3) -> str:
    """Markdown for one public object (and the members of a class)."""
    hashes = "#" * level
    kind = _kind(obj)
    parts = [f"{hashes} `{name}`", ""]
    if inspect.isclass(obj):
        parts += ["```python", _class_signature(obj, name), "```", ""]
        doc = docstring_to_markdown(inspect.getdoc(obj) if obj.__doc__ else None)
        if doc:
            parts += [f"*{kind}* — " + doc, ""]
        else:
            parts += [f"*{kind}*", ""]
        if issubclass(obj, enum.Enum):
            values = ", ".join(f"`{m.name}`" for m in obj)
            parts += [f"Members: {values}", ""]
        # Members get their own headings (not list items): fenced code inside Markdown lists is
        # not reliable, and headings give each method an anchor.
        member_hashes = "#" * (level + 1)
        for member_name, member in _members(obj):
            if isinstance(member, property):
                parts += [f"{member_hashes} `{name}.{member_name}`", "", "*property*", ""]
            else:
                parts += [f"{member_hashes} `{name}.{member_name}`", ""]
                prefix = "async def " if inspect.iscoroutinefunction(member) else "def "
                parts += ["```python", prefix + _signature(member, member_name), "```", ""]
            mdoc = docstring_to_markdown(member.__doc__)
            if mdoc:
                parts += [mdoc, ""]
        parts.append("")
    elif callable(obj):
        prefix = "async def " if inspect.iscoroutinefunction(obj) else "def "
        parts += ["```python", prefix + _signature(obj, name), "```", ""]
        doc = docstring_to_markdown(obj.__doc__)
        parts += [f"*{kind}*" + (" — " + doc if doc else ""), ""]
    else:
        text = _ADDRESS.sub(r"\1(...)", repr(obj))
        if len(text) > 200:
            text = text[:197] + "..."
        parts += ["```python", f"{name} = {text}", "```", ""]
    return "\n".join(parts)


def render_module(module_name: str, summary: str) -> str:
    """Markdown for one module: its docstring, then every public object."""
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:  # an optional extra that is not installed
        return f"## `{module_name}`\n\n{summary}\n\n*Not importable here ({exc}); install its extra.*\n"
    parts = [f"## `{module_name}`", "", summary, ""]
    doc = docstring_to_markdown(module.__doc__)
    if doc:
        parts += [_demote_headings(doc), ""]
    for name in public_names(module):
        if not hasattr(module, name):
            continue
        parts.append(render_object(name, getattr(module, name)))
    return "\n".join(parts)


def _demote_headings(text: str) -> str:
    return re.sub(r"^(#+) ", lambda m: "####" + " ", text, flags=re.MULTILINE)


def render(modules: Iterable[tuple[str, str]] = MODULES) -> str:
    """The whole reference as Markdown."""
    return "\n".join(render_module(name, summary) for name, summary in modules)


# --- mkdocs hook ----------------------------------------------------------------------------------
def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """mkdocs hook: fill the marker of ``reference.md`` with the generated reference."""
    if page.file.src_uri == REFERENCE_PAGE and MARKER in markdown:
        return markdown.replace(MARKER, render())
    return markdown


def main(argv: list[str] | None = None) -> int:
    """Print the reference, or write it with ``-o FILE``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", help="write to this file instead of standard output")
    args = parser.parse_args(argv)
    text = render()
    if args.output:
        with open(args.output, "w", encoding="utf-8") as fh:
            fh.write(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
