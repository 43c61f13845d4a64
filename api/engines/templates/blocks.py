"""Email content as blocks (heading, paragraph, button, image, columns), the way the
Dentrix Ascend composer builds an email, and the checks a block document must pass."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

from api.engines.templates.render import TemplateProblem

Align = Literal["left", "center", "right"]

_COLOR = re.compile(r"#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})")
_FONT = re.compile(r"[A-Za-z0-9 ,'\"-]{1,200}")
MAX_BLOCKS = 100
MAX_COLUMNS = 4
URL_SCHEMES = ("https://", "http://", "mailto:", "tel:")


@dataclass(frozen=True)
class Heading:
    type: Literal["heading"]
    text: str
    level: int = 1
    align: Align = "left"


@dataclass(frozen=True)
class Paragraph:
    type: Literal["paragraph"]
    text: str
    align: Align = "left"


@dataclass(frozen=True)
class Button:
    type: Literal["button"]
    text: str
    url: str
    color: str = "#1a73e8"
    text_color: str = "#ffffff"
    align: Align = "center"


@dataclass(frozen=True)
class Image:
    type: Literal["image"]
    src: str
    alt: str = ""
    url: str | None = None
    # Pixels at full width (the email is at most 600 px wide); scales down on phones.
    width: int = 600
    align: Align = "center"


ContentBlock = Heading | Paragraph | Button | Image


@dataclass(frozen=True)
class Column:
    blocks: tuple[ContentBlock, ...]
    # Percent of the row; 0 shares what the other columns leave equally.
    width: int = 0


@dataclass(frozen=True)
class Columns:
    type: Literal["columns"]
    columns: tuple[Column, ...]


Block = Heading | Paragraph | Button | Image | Columns


@dataclass(frozen=True)
class EmailStyle:
    text_color: str = "#222222"
    link_color: str = "#1a73e8"
    background_color: str = "#f4f4f4"
    content_background_color: str = "#ffffff"
    font_family: str = "Helvetica, Arial, sans-serif"
    align: Align = "left"


@dataclass(frozen=True)
class Footer:
    """What every email ends with: the office's name and address, and the unsubscribe link."""

    lines: tuple[str, ...]
    unsubscribe_url: str
    unsubscribe_text: str = "Unsubscribe from these emails"


def walk(blocks: Sequence[Block], prefix: str = "blocks") -> Iterator[tuple[str, Block]]:
    """Every block with its field path (`blocks[1].columns[0].blocks[2]`), depth first."""
    for i, block in enumerate(blocks):
        path = f"{prefix}[{i}]"
        yield path, block
        if isinstance(block, Columns):
            for j, column in enumerate(block.columns):
                yield from walk(column.blocks, f"{path}.columns[{j}].blocks")


def template_fields(subject: str, blocks: Sequence[Block]) -> list[tuple[str, str]]:
    """Every (field path, text) that may hold placeholders."""
    fields = [("subject", subject)]
    for path, block in walk(blocks):
        if isinstance(block, Heading | Paragraph):
            fields.append((f"{path}.text", block.text))
        elif isinstance(block, Button):
            fields += [(f"{path}.text", block.text), (f"{path}.url", block.url)]
        elif isinstance(block, Image):
            fields += [(f"{path}.src", block.src), (f"{path}.alt", block.alt)]
            if block.url is not None:
                fields.append((f"{path}.url", block.url))
    return fields


def _color_problems(path: str, names_values: Sequence[tuple[str, str]]) -> list[TemplateProblem]:
    return [
        TemplateProblem(f"{path}{name}", "a color is #rgb or #rrggbb")
        for name, value in names_values
        if not _COLOR.fullmatch(value)
    ]


def check_blocks(blocks: Sequence[Block], style: EmailStyle) -> list[TemplateProblem]:
    """Structural problems: sizes, colors, widths (URLs are checked once rendered)."""
    problems = _color_problems(
        "style.",
        [
            ("text_color", style.text_color),
            ("link_color", style.link_color),
            ("background_color", style.background_color),
            ("content_background_color", style.content_background_color),
        ],
    )
    if not _FONT.fullmatch(style.font_family):
        problems.append(TemplateProblem("style.font_family", "letters, digits, spaces, commas"))
    if not blocks:
        problems.append(TemplateProblem("blocks", "an email needs at least one block"))
    count = 0
    for path, block in walk(blocks):
        count += 1
        if isinstance(block, Heading) and not 1 <= block.level <= 3:
            problems.append(TemplateProblem(f"{path}.level", "a heading level is 1, 2 or 3"))
        elif isinstance(block, Button):
            problems += _color_problems(
                path + ".", [("color", block.color), ("text_color", block.text_color)]
            )
        elif isinstance(block, Image) and not 1 <= block.width <= 600:
            problems.append(TemplateProblem(f"{path}.width", "between 1 and 600 pixels"))
        elif isinstance(block, Columns):
            if not 1 <= len(block.columns) <= MAX_COLUMNS:
                problems.append(TemplateProblem(f"{path}.columns", "1 to 4 columns"))
            widths = [c.width for c in block.columns]
            if any(w < 0 or w > 100 for w in widths) or sum(widths) > 100:
                problems.append(
                    TemplateProblem(f"{path}.columns", "column widths are percents adding to 100")
                )
    if count > MAX_BLOCKS:
        problems.append(TemplateProblem("blocks", f"at most {MAX_BLOCKS} blocks"))
    return problems


def column_widths(columns: Sequence[Column]) -> list[int]:
    """Percent widths: unset columns share what the set ones leave."""
    fixed = sum(c.width for c in columns)
    unset = [c for c in columns if c.width == 0]
    share = (100 - fixed) // len(unset) if unset else 0
    return [c.width or share for c in columns]


@dataclass(frozen=True)
class EmailDocument:
    subject: str
    blocks: tuple[Block, ...]
    style: EmailStyle = field(default_factory=EmailStyle)
    # The grey line mail apps show after the subject.
    preheader: str = ""
