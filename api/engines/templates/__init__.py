"""Message templates: pure functions, no I/O.

placeholders(source) / render(source, values, escape=None)      the {{name}} syntax
check_variables(fields, channel=..., allow_clinical_sms=...)    known, allowed names
measure(text) -> SmsLength                                      GSM-7 / UCS-2 segments
check_blocks(blocks, style) / render_email(document, values, footer)   email blocks
format_date(day, country)                                       dates as offices write them
"""

from api.engines.templates.blocks import (
    Block,
    Button,
    Column,
    Columns,
    ContentBlock,
    EmailDocument,
    EmailStyle,
    Footer,
    Heading,
    Image,
    Paragraph,
    check_blocks,
    template_fields,
)
from api.engines.templates.dates import format_date, local_date
from api.engines.templates.email import RenderedEmail, render_email
from api.engines.templates.render import (
    Placeholder,
    TemplateError,
    TemplateProblem,
    placeholders,
    render,
)
from api.engines.templates.sms import SMS_MAX_CHARACTERS, SmsLength, measure
from api.engines.templates.variables import VARIABLES, Variable, check_variables, sample_values

__all__ = [
    "SMS_MAX_CHARACTERS",
    "VARIABLES",
    "Block",
    "Button",
    "Column",
    "Columns",
    "ContentBlock",
    "EmailDocument",
    "EmailStyle",
    "Footer",
    "Heading",
    "Image",
    "Paragraph",
    "Placeholder",
    "RenderedEmail",
    "SmsLength",
    "TemplateError",
    "TemplateProblem",
    "Variable",
    "check_blocks",
    "check_variables",
    "format_date",
    "local_date",
    "measure",
    "placeholders",
    "render",
    "render_email",
    "sample_values",
    "template_fields",
]
