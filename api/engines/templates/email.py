"""Blocks -> responsive HTML (table layout, inline styles, at most 600 px wide; columns
stack on narrow screens without media queries) and the matching plain-text part."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape

from api.engines.templates.blocks import (
    URL_SCHEMES,
    Block,
    Button,
    Columns,
    ContentBlock,
    EmailDocument,
    EmailStyle,
    Footer,
    Heading,
    Paragraph,
    column_widths,
)
from api.engines.templates.render import TemplateError, TemplateProblem, render

WIDTH = 600
_HEADING_SIZES = {1: 28, 2: 22, 3: 18}


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    html: str
    text: str


class _Renderer:
    def __init__(self, values: Mapping[str, str], style: EmailStyle) -> None:
        self.values = values
        self.style = style
        self.problems: list[TemplateProblem] = []

    def fill(self, source: str, field: str) -> str:
        try:
            return render(source, self.values, field=field)
        except TemplateError as exc:
            self.problems += exc.problems
            return ""

    def url(self, source: str, field: str) -> str:
        value = self.fill(source, field).strip()
        if value and not value.lower().startswith(URL_SCHEMES):
            self.problems.append(TemplateProblem(field, "a link starts with https://, mailto:"))
            return ""
        return value

    def _font(self, size: int, align: str, extra: str = "") -> str:
        return (
            f"font-family:{self.style.font_family};font-size:{size}px;line-height:1.5;"
            f"color:{self.style.text_color};text-align:{align};margin:0;{extra}"
        )

    def block(self, path: str, block: ContentBlock, width: int) -> tuple[str, str]:
        """(html, text) of one block `width` pixels wide at most."""
        if isinstance(block, Heading):
            text = self.fill(block.text, f"{path}.text")
            size = _HEADING_SIZES.get(block.level, 18)
            style = self._font(size, block.align, "font-weight:bold;")
            html = f'<h{block.level} style="{style}">{escape(text)}</h{block.level}>'
            return html, text
        if isinstance(block, Paragraph):
            text = self.fill(block.text, f"{path}.text")
            body = "<br>".join(escape(line) for line in text.split("\n"))
            return f'<p style="{self._font(16, block.align)}">{body}</p>', text
        if isinstance(block, Button):
            text = self.fill(block.text, f"{path}.text")
            href = self.url(block.url, f"{path}.url")
            link = (
                f'<a href="{escape(href)}" style="display:inline-block;padding:12px 24px;'
                f"background-color:{block.color};color:{block.text_color};border-radius:4px;"
                f"font-family:{self.style.font_family};font-size:16px;font-weight:bold;"
                f'text-decoration:none;">{escape(text)}</a>'
            )
            html = (
                '<table role="presentation" cellpadding="0" cellspacing="0" border="0" '
                f'width="100%"><tr><td align="{block.align}">{link}</td></tr></table>'
            )
            return html, f"{text}: {href}"
        src = self.url(block.src, f"{path}.src")
        alt = self.fill(block.alt, f"{path}.alt")
        href = self.url(block.url, f"{path}.url") if block.url else ""
        size = min(block.width, width)
        img = (
            f'<img src="{escape(src)}" alt="{escape(alt)}" width="{size}" '
            f'style="display:block;width:100%;max-width:{size}px;height:auto;border:0;">'
        )
        if href:
            img = f'<a href="{escape(href)}">{img}</a>'
        html = (
            '<table role="presentation" cellpadding="0" cellspacing="0" border="0" '
            f'width="100%"><tr><td align="{block.align}">{img}</td></tr></table>'
        )
        text = f"[{alt}]" if alt else ""
        return html, (f"{text} {href}".strip() if href else text)

    def columns(self, path: str, block: Columns) -> tuple[str, str]:
        cells: list[str] = []
        texts: list[str] = []
        for j, (column, percent) in enumerate(
            zip(block.columns, column_widths(block.columns), strict=True)
        ):
            width = WIDTH * percent // 100
            inner_html: list[str] = []
            for k, inner in enumerate(column.blocks):
                html, text = self.block(f"{path}.columns[{j}].blocks[{k}]", inner, width)
                inner_html.append(f'<div style="padding:0 8px 12px 8px;">{html}</div>')
                texts.append(text)
            # Fluid-hybrid: inline-blocks side by side, wrapping under each other on phones.
            cells.append(
                f'<div style="display:inline-block;width:100%;max-width:{width}px;'
                f'vertical-align:top;">{"".join(inner_html)}</div>'
            )
        html = f'<div style="font-size:0;text-align:left;">{"".join(cells)}</div>'
        return html, "\n\n".join(t for t in texts if t)

    def any(self, path: str, block: Block) -> tuple[str, str]:
        if isinstance(block, Columns):
            return self.columns(path, block)
        return self.block(path, block, WIDTH)


def render_email(
    document: EmailDocument, values: Mapping[str, str], footer: Footer | None = None
) -> RenderedEmail:
    """Fill the placeholders (HTML-escaped) and lay the blocks out; TemplateError lists
    every problem at once."""
    style = document.style
    renderer = _Renderer(values, style)
    subject = renderer.fill(document.subject, "subject")
    preheader = renderer.fill(document.preheader, "preheader")
    rows: list[str] = []
    texts: list[str] = []
    for i, block in enumerate(document.blocks):
        html, text = renderer.any(f"blocks[{i}]", block)
        rows.append(f'<tr><td style="padding:12px 24px;">{html}</td></tr>')
        if text:
            texts.append(text)
    if renderer.problems:
        raise TemplateError(renderer.problems)
    if footer is not None:
        rows.append(_footer_row(footer, style))
        texts.append(
            "\n".join([*footer.lines, f"{footer.unsubscribe_text}: {footer.unsubscribe_url}"])
        )
    return RenderedEmail(
        subject=subject,
        html=_page(subject, preheader, rows, style),
        text="\n\n".join(texts) + "\n",
    )


def _footer_row(footer: Footer, style: EmailStyle) -> str:
    lines = "<br>".join(escape(line) for line in footer.lines)
    font = (
        f"font-family:{style.font_family};font-size:12px;line-height:1.5;color:#777777;"
        "text-align:center;margin:0;"
    )
    link = (
        f'<a href="{escape(footer.unsubscribe_url)}" style="color:{style.link_color};">'
        f"{escape(footer.unsubscribe_text)}</a>"
    )
    return f'<tr><td style="padding:24px;"><p style="{font}">{lines}<br>{link}</p></td></tr>'


def _page(subject: str, preheader: str, rows: Sequence[str], style: EmailStyle) -> str:
    hidden = (
        '<div style="display:none;max-height:0;overflow:hidden;mso-hide:all;">'
        f"{escape(preheader)}</div>"
        if preheader
        else ""
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(subject)}</title></head>"
        f'<body style="margin:0;padding:0;background-color:{style.background_color};">'
        f"{hidden}"
        '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" '
        f'style="background-color:{style.background_color};"><tr>'
        '<td align="center" style="padding:16px 8px;">'
        '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" '
        f'style="width:100%;max-width:{WIDTH}px;'
        f'background-color:{style.content_background_color};text-align:{style.align};">'
        f"{''.join(rows)}</table></td></tr></table></body></html>"
    )
