"""A deck's content made into a real .pptx with python-pptx: native titles, bullet paragraphs, tables and charts, so
the file stays editable in PowerPoint and LibreOffice. Without a template the deck is 16:9 in one of our themes;
with one, the user's masters, layouts, fonts and colours are used as they are.

Synchronous and CPU-bound: callers run it in a thread. The same spec always gives the same bytes.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any, Literal

from pptx import Presentation
from pptx.chart.chart import Chart
from pptx.chart.data import CategoryChartData
from pptx.dml.color import RGBColor
from pptx.enum.chart import XL_CHART_TYPE, XL_LABEL_POSITION, XL_LEGEND_POSITION, XL_MARKER_STYLE
from pptx.enum.shapes import MSO_SHAPE, PP_PLACEHOLDER
from pptx.enum.text import MSO_ANCHOR, MSO_AUTO_SIZE, PP_ALIGN
from pptx.opc.constants import CONTENT_TYPE as CT
from pptx.opc.constants import RELATIONSHIP_TYPE as RT
from pptx.opc.oxml import serialize_part_xml
from pptx.oxml import parse_xml
from pptx.oxml.ns import qn
from pptx.oxml.xmlchemy import OxmlElement
from pptx.presentation import Presentation as PresentationObj
from pptx.shapes.base import BaseShape
from pptx.slide import Slide, SlideLayout
from pptx.text.text import TextFrame
from pptx.util import Emu, Inches, Pt

from services.generation.schemas import ChartData, DeckSpec, SlideCitation, SlideContent, TableData

# -- themes ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Theme:
    """The look of a deck made without a template. ``accents`` colour bars, table headers and chart series."""

    name: str
    label: str
    background: RGBColor
    title: RGBColor
    text: RGBColor
    accents: tuple[RGBColor, ...]
    title_font: str
    body_font: str


def _rgb(hex_: str) -> RGBColor:
    return RGBColor.from_string(hex_)


THEMES: dict[str, Theme] = {
    theme.name: theme
    for theme in (
        Theme("light", "Light", _rgb("FFFFFF"), _rgb("111827"), _rgb("374151"),
              tuple(_rgb(c) for c in ("2563EB", "F59E0B", "10B981", "EF4444", "8B5CF6", "06B6D4")),
              "Calibri", "Calibri"),
        Theme("dark", "Dark", _rgb("0F172A"), _rgb("F8FAFC"), _rgb("CBD5E1"),
              tuple(_rgb(c) for c in ("38BDF8", "FBBF24", "34D399", "F87171", "A78BFA", "F472B6")),
              "Segoe UI", "Segoe UI"),
        Theme("ocean", "Ocean", _rgb("F0F7FA"), _rgb("0B3954"), _rgb("1F4E66"),
              tuple(_rgb(c) for c in ("0E7490", "F97316", "1E3A8A", "14B8A6", "0284C7", "64748B")),
              "Trebuchet MS", "Calibri"),
        Theme("sunset", "Sunset", _rgb("FFF7ED"), _rgb("7C2D12"), _rgb("44403C"),
              tuple(_rgb(c) for c in ("C2410C", "BE185D", "0F766E", "D97706", "7C3AED", "B91C1C")),
              "Georgia", "Calibri"),
    )
}  # fmt: skip

WHITE = _rgb("FFFFFF")
INK = _rgb("111827")

# -- geometry (EMU) and text fitting ----------------------------------------------------------------------------

SLIDE_W = 12_192_000  # 13.333 in: 16:9
SLIDE_H = 6_858_000  # 7.5 in
MARGIN = Inches(0.6)
TITLE_BOX = (MARGIN, Inches(0.3), SLIDE_W - 2 * MARGIN, Inches(1.15))
RULE_TOP = Inches(1.52)
BODY_BOX = (MARGIN, Inches(1.8), SLIDE_W - 2 * MARGIN, Inches(5.25))
INSET = Inches(0.1)  # a text frame's default left/right inset
BULLET_INDENT = Inches(0.375)  # the default master's first-level bullet margin
BOLD = 1.1  # bold text is this much wider
LINE = 1.2  # a line's height as a multiple of the font size
PARA_GAP = 0.5  # the space before a bullet, as a multiple of the font size
CAPTION_MAX_H = Inches(1.25)
CAPTION_GAP = 0.3
CAPTION_SPACE = Inches(0.15)

Rect = tuple[int, int, int, int]

_NARROW = set("iljtfrI.,;:!'|()[]{}")
_WIDE = set("mwMW@%")


def _em(ch: str) -> float:
    """The width of a character in ems, close to DejaVu Sans (the widest font a renderer falls back to), so text
    that fits here fits in Calibri too."""
    if ch == " ":
        return 0.32
    if ch in _NARROW:
        return 0.34
    if ch in _WIDE:
        return 0.9
    if ch.isupper() or ch.isdigit():
        return 0.68
    return 0.6


def _lines(text: str, size_pt: float, width_emu: int, *, bold: bool = False) -> int:
    """How many lines ``text`` wraps to (greedy by words, long words broken)."""
    width = width_emu / 12_700 / size_pt / (BOLD if bold else 1.0)  # in ems
    if width <= 0:
        return 1_000
    lines, used = 1, 0.0
    for word in text.split():
        w = sum(_em(c) for c in word)
        gap = _em(" ") if used else 0.0
        if used + gap + w <= width:
            used += gap + w
            continue
        if used:
            lines += 1
        used = 0.0
        while w > width:  # a word longer than the line
            lines += 1
            w -= width
        used = w
    return lines


def _text_height(
    paragraphs: Sequence[str], size: float, width: int, gap: float = PARA_GAP, *, bold: bool = False
) -> float:
    """The height of the paragraphs at ``size`` in points."""
    if not paragraphs:
        return 0.0
    lines = sum(_lines(p, size, width, bold=bold) for p in paragraphs)
    return lines * size * LINE + (len(paragraphs) - 1) * gap * size


def _fit(paragraphs: Sequence[str], width: int, height: int, *, biggest: int, smallest: int,
         gap: float = PARA_GAP, bold: bool = False) -> int:  # fmt: skip
    """The largest whole point size at which the paragraphs fit the box (the smallest when none does)."""
    room = height / 12_700 - 8  # the frame's top and bottom insets, with a little slack
    for size in range(biggest, smallest - 1, -1):
        if _text_height(paragraphs, size, width, gap, bold=bold) <= room:
            return size
    return smallest


def _blend(a: RGBColor, b: RGBColor, t: float) -> RGBColor:
    """``a`` moved ``t`` of the way towards ``b``."""
    return RGBColor(*(round(x + (y - x) * t) for x, y in zip(a, b, strict=True)))


def _on(fill: RGBColor) -> RGBColor:
    """White or ink, whichever reads better on ``fill``."""

    def channel(c: int) -> float:
        v = c / 255
        return v / 12.92 if v <= 0.03928 else ((v + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in fill)
    luminance = 0.2126 * r + 0.7152 * g + 0.0722 * b
    return WHITE if (1.05 / (luminance + 0.05)) >= ((luminance + 0.05) / (INK_LUMINANCE + 0.05)) else INK


INK_LUMINANCE = 0.0116  # of INK (#111827)

# -- text helpers -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Style:
    """How text is set: with a theme every run gets its font and colour, with a template nothing is forced."""

    color: RGBColor | None = None
    font: str | None = None
    bold: bool | None = None
    size: int | None = None
    align: PP_ALIGN | None = None
    bullet_color: RGBColor | None = None


_BULLET_SUCCESSORS = ("a:buSzTx", "a:buSzPct", "a:buSzPts", "a:buFontTx", "a:buFont", "a:buNone", "a:buAutoNum",
                      "a:buChar", "a:buBlip", "a:tabLst", "a:defRPr", "a:extLst")  # fmt: skip


def _write(frame: TextFrame, paragraphs: Sequence[str], style: _Style, *, bullets: bool = False,
           gap: float = PARA_GAP) -> None:  # fmt: skip
    """One paragraph per item (a bullet each when ``bullets``), replacing what the frame held."""
    frame.clear()
    frame.word_wrap = True
    for i, text in enumerate(paragraphs):
        para = frame.paragraphs[0] if i == 0 else frame.add_paragraph()
        if style.align is not None:
            para.alignment = style.align
        if style.size is not None:
            para.line_spacing = 1.0
            if i:
                para.space_before = Pt(round(style.size * gap))
        if bullets and style.bullet_color is not None:
            _bullet(para._p, style.bullet_color)
        run = para.add_run()
        run.text = text
        font = run.font
        if style.size is not None:
            font.size = Pt(style.size)
        if style.bold is not None:
            font.bold = style.bold
        if style.color is not None:
            font.color.rgb = style.color
        if style.font is not None:
            font.name = style.font


def _bullet(p: Any, color: RGBColor | None, *, char: bool = False) -> None:
    """Colour a paragraph's bullet (and give it a bullet character, for text boxes that have none)."""
    ppr = p.get_or_add_pPr()
    if char:
        ppr.set("marL", str(BULLET_INDENT))
        ppr.set("indent", str(-BULLET_INDENT))
    if color is not None:
        clr = OxmlElement("a:buClr")
        srgb = OxmlElement("a:srgbClr")
        srgb.set("val", str(color))
        clr.append(srgb)
        ppr.insert_element_before(clr, *_BULLET_SUCCESSORS)
    if char:
        font = OxmlElement("a:buFont")
        font.set("typeface", "Arial")
        ppr.insert_element_before(font, *_BULLET_SUCCESSORS[5:])
        bu = OxmlElement("a:buChar")
        bu.set("char", "•")
        ppr.insert_element_before(bu, *_BULLET_SUCCESSORS[8:])


def _place(shape: BaseShape, rect: Rect) -> None:
    shape.left, shape.top, shape.width, shape.height = (Emu(v) for v in rect)


def _rect(shape: BaseShape) -> Rect | None:
    if shape.left is None or shape.top is None or shape.width is None or shape.height is None:
        return None
    return int(shape.left), int(shape.top), int(shape.width), int(shape.height)


def _remove(shape: BaseShape) -> None:
    element = shape.element
    element.getparent().remove(element)


def _send_to_back(shape: BaseShape) -> None:
    """Behind the placeholders (the first two children of a shape tree are its own properties)."""
    element = shape.element
    tree = element.getparent()
    tree.remove(element)
    tree.insert(2, element)


def _band(slide: Slide, rect: Rect, color: RGBColor) -> None:
    """A flat coloured rectangle behind the text."""
    shape = slide.shapes.add_shape(MSO_SHAPE.RECTANGLE, *(Emu(v) for v in rect))
    shape.fill.solid()
    shape.fill.fore_color.rgb = color
    shape.line.fill.background()
    shape.shadow.inherit = False
    _send_to_back(shape)


def _notes(content: SlideContent) -> str:
    """The speaker notes with a "Sources:" block, one line per cited passage."""
    lines = []
    seen: set[str] = set()
    for citation in sorted(content.citations, key=lambda c: c.n):
        line = _source_line(citation)
        if line not in seen:
            seen.add(line)
            lines.append(line)
    parts = [content.notes.strip()] if content.notes.strip() else []
    if lines:
        parts.append("Sources:\n" + "\n".join(lines))
    return "\n\n".join(parts)


def _source_line(citation: SlideCitation) -> str:
    where = [citation.title.strip() or citation.resource_id]
    if citation.page is not None:
        where.append(f"p. {citation.page}")
    if citation.heading and citation.heading.strip():
        where.append(citation.heading.strip())
    return f"[{citation.n}] " + ", ".join(where)


# -- templates ------------------------------------------------------------------------------------------------

Kind = Literal["title", "bullets", "two_columns", "section", "title_only"]
_BODIES = (PP_PLACEHOLDER.BODY, PP_PLACEHOLDER.OBJECT)
_ACCESSORIES = (PP_PLACEHOLDER.DATE, PP_PLACEHOLDER.FOOTER, PP_PLACEHOLDER.SLIDE_NUMBER)
_PRESENTATION_TYPES = (CT.PML_PRESENTATION_MAIN, CT.PML_PRES_MACRO_MAIN, CT.PML_TEMPLATE_MAIN, CT.PML_SLIDESHOW_MAIN)
_SECTIONS_EXT = "{521415D9-36F7-43E2-AB2F-B90AF26B5E84}"
VBA_PROJECT = "http://schemas.microsoft.com/office/2006/relationships/vbaProject"


def _placeholders(owner: Any) -> list[Any]:
    """A slide's, layout's or master's placeholders (python-pptx types their iteration oddly)."""
    return list(owner.placeholders)


@dataclass(frozen=True)
class _LayoutInfo:
    layout: SlideLayout
    kind: str  # the layout's type attribute: title, obj, secHead, twoObj, titleOnly, ...
    name: str
    center_title: bool
    title: bool  # any title placeholder
    subtitle: bool
    bodies: int
    columns: bool  # two body placeholders of about one size, side by side


def _describe(layout: SlideLayout) -> _LayoutInfo:
    placeholders = _placeholders(layout)
    types = [ph.placeholder_format.type for ph in placeholders]
    types = [t for t in types if t not in _ACCESSORIES]
    rects = [r for ph in placeholders if ph.placeholder_format.type in _BODIES and (r := _rect(ph)) is not None]
    columns = False
    if len(rects) == 2:
        (x1, _, w1, h1), (x2, _, w2, h2) = sorted(rects)
        columns = x1 + w1 <= x2 and 0.7 <= w1 / max(w2, 1) <= 1.4 and 0.7 <= h1 / max(h2, 1) <= 1.4
    return _LayoutInfo(
        layout=layout,
        kind=layout.element.get("type") or "",
        name=(layout.name or "").strip().lower(),
        center_title=PP_PLACEHOLDER.CENTER_TITLE in types,
        title=PP_PLACEHOLDER.CENTER_TITLE in types or PP_PLACEHOLDER.TITLE in types,
        subtitle=PP_PLACEHOLDER.SUBTITLE in types,
        bodies=sum(t in _BODIES for t in types),
        columns=columns,
    )


def _choose(infos: list[_LayoutInfo], tests: Iterable[Callable[[_LayoutInfo], bool]]) -> SlideLayout | None:
    """The first layout passing the first test any layout passes."""
    for test in tests:
        for info in infos:
            if test(info):
                return info.layout
    return None


def _pick_layouts(prs: PresentationObj) -> dict[Kind, SlideLayout | None]:
    """The template's layout for each of ours, by type, then name, then placeholders. ``None`` for two columns
    and title-only means: use the bullets layout instead (with a text box, or without its body)."""
    infos = [_describe(layout) for master in prs.slide_masters for layout in master.slide_layouts]
    bullets = _choose(infos, (
        lambda i: i.kind == "obj" and i.title and i.bodies == 1,
        lambda i: i.name == "title and content" and i.title and i.bodies >= 1,
        lambda i: i.title and not i.center_title and i.bodies == 1,
        lambda i: i.title and i.bodies >= 1,
    ))  # fmt: skip
    anything = _choose(infos, (lambda i: i.title, lambda i: True))
    title = _choose(infos, (
        lambda i: i.kind == "title" and i.title,
        lambda i: i.name == "title slide" and i.title,
        lambda i: i.center_title,
        lambda i: i.title and i.subtitle,
    ))  # fmt: skip
    section = _choose(infos, (
        lambda i: i.kind == "secHead" and i.title,
        lambda i: i.name == "section header" and i.title,
    ))  # fmt: skip
    two = _choose(infos, (
        lambda i: i.kind == "twoObj" and i.title and i.bodies == 2,
        lambda i: i.name == "two content" and i.title and i.bodies == 2,
        lambda i: i.title and not i.center_title and i.bodies == 2 and i.columns,
    ))  # fmt: skip
    title_only = _choose(infos, (
        lambda i: i.kind == "titleOnly" and i.title,
        lambda i: i.name == "title only" and i.title,
        lambda i: i.title and not i.center_title and i.bodies == 0 and not i.subtitle,
    ))  # fmt: skip
    bullets = bullets or anything
    title = title or bullets
    return {"title": title, "bullets": bullets, "two_columns": two, "section": section or title,
            "title_only": title_only}  # fmt: skip


def _open(data: bytes) -> PresentationObj:
    """The bytes as a presentation, or ``ValueError`` saying why they are not one."""
    if not data:
        raise ValueError("the file is empty")
    if not zipfile.is_zipfile(io.BytesIO(data)):
        raise ValueError("the file is not a .pptx (not a zip archive)")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
            types = archive.read("[Content_Types].xml").decode("utf-8", "replace") if "[Content_Types].xml" in \
                names else ""  # fmt: skip
    except (zipfile.BadZipFile, OSError, RuntimeError) as exc:  # RuntimeError: an encrypted member
        raise ValueError(f"the zip archive cannot be read ({exc})") from exc
    if not types:
        raise ValueError("the zip archive is not an Office document (no [Content_Types].xml)")
    if not any(kind in types for kind in _PRESENTATION_TYPES):
        raise ValueError("the Office document is not a PowerPoint presentation")
    if CT.PML_TEMPLATE_MAIN in types or CT.PML_SLIDESHOW_MAIN in types:  # python-pptx opens only .pptx/.pptm
        data = _as_presentation(data)
    try:
        return Presentation(io.BytesIO(data))
    except Exception as exc:  # python-pptx raises KeyError, lxml errors, ... on broken packages
        raise ValueError(f"the presentation cannot be read ({type(exc).__name__}: {exc})") from exc


def _as_presentation(data: bytes) -> bytes:
    """A .potx or .ppsx package with its main part typed as a presentation's."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            blob = src.read(info.filename)
            if info.filename == "[Content_Types].xml":
                for other in (CT.PML_TEMPLATE_MAIN, CT.PML_SLIDESHOW_MAIN):
                    blob = blob.replace(other.encode(), CT.PML_PRESENTATION_MAIN.encode())
            dst.writestr(info, blob)
    return out.getvalue()


def check_template(data: bytes) -> None:
    """Raise ``ValueError`` with a plain reason unless ``data`` is a .pptx (or .potx) with slide layouts."""
    _usable(_open(data))


def _usable(prs: PresentationObj) -> PresentationObj:
    if not any(len(master.slide_layouts) for master in prs.slide_masters):
        raise ValueError("the presentation has no slide layouts")
    if _pick_layouts(prs)["bullets"] is None:
        raise ValueError("the presentation has no usable slide layout")
    return prs


def template_layouts(template: bytes) -> list[str]:
    """The names of the template's slide layouts, each once, masters in order."""
    prs = _open(template)
    names: list[str] = []
    for master in prs.slide_masters:
        for layout in master.slide_layouts:
            name = (layout.name or "").strip() or "(unnamed)"
            if name not in names:
                names.append(name)
    return names


def _empty_of_slides(prs: PresentationObj) -> None:
    """Remove the template's own slides: their relationships (so the parts are not saved) and their ids, with the
    custom shows and sections that name them; a template or macro file becomes a plain presentation."""
    root = prs.element
    id_list = root.find(qn("p:sldIdLst"))
    if id_list is not None:
        for sld_id in list(id_list):
            rid = sld_id.get(qn("r:id"))
            id_list.remove(sld_id)
            if rid is not None and rid in prs.part.rels:
                prs.part.drop_rel(rid)
    for shows in root.findall(qn("p:custShowLst")):
        root.remove(shows)
    for ext_list in root.findall(qn("p:extLst")):
        for ext in ext_list.findall(qn("p:ext")):
            if ext.get("uri") == _SECTIONS_EXT:
                ext_list.remove(ext)
    for rid, rel in list(prs.part.rels.items()):
        if rel.reltype == VBA_PROJECT:
            prs.part.drop_rel(rid)
    prs.part._content_type = CT.PML_PRESENTATION_MAIN  # a .potx/.pptm main part saved as a .pptx one


def _inherited_size(slide: Slide, idx: int, style: str) -> int | None:
    """The point size a template gives a placeholder's first level (layout, then master), if it says."""
    layout = slide.slide_layout
    sources = []
    for ph in _placeholders(layout):
        if ph.placeholder_format.idx == idx:
            sources.append(ph.element)
            kind = ph.placeholder_format.type
            for master_ph in _placeholders(layout.slide_master):
                if (
                    master_ph.placeholder_format.type == kind
                    or (
                        kind in (PP_PLACEHOLDER.CENTER_TITLE, PP_PLACEHOLDER.TITLE)
                        and master_ph.placeholder_format.type == PP_PLACEHOLDER.TITLE
                    )
                    or (kind in _BODIES and master_ph.placeholder_format.type == PP_PLACEHOLDER.BODY)
                ):
                    sources.append(master_ph.element)
                    break
    for element in sources:
        found = element.xpath("./p:txBody/a:lstStyle/a:lvl1pPr/a:defRPr/@sz")
        if found:
            return int(found[0]) // 100
    found = layout.slide_master.element.xpath(f"./p:txStyles/p:{style}/a:lvl1pPr/a:defRPr/@sz")
    return int(found[0]) // 100 if found else None


def _pin_placeholders(slide: Slide, layout: SlideLayout) -> None:
    """Where a layout numbers several placeholders alike (LibreOffice writes every content placeholder as idx 0),
    inheriting the position by number would stack them on the title: give each the position of its own."""
    source = list(layout.iter_cloneable_placeholders())
    numbers = [ph.placeholder_format.idx for ph in source]
    if len(set(numbers)) == len(numbers):
        return
    shapes: list[Any] = list(slide.shapes)
    for original, copy in zip(source, [sh for sh in shapes if sh.is_placeholder], strict=False):
        if (rect := _rect(original)) is not None:
            _place(copy, rect)


def _side_by_side(shapes: Sequence[Any]) -> bool:
    rects = sorted(r for sh in shapes if (r := _rect(sh)) is not None)
    return len(rects) >= 2 and all(a[0] + a[2] <= b[0] for a, b in pairwise(rects))


# -- the renderer -----------------------------------------------------------------------------------------------


class _Deck:
    """One render: the presentation, the look (a theme, or the template's own when ``theme`` is None) and the
    layout used for each kind of slide."""

    def __init__(self, prs: PresentationObj, theme: Theme | None) -> None:
        self.prs = prs
        self.theme = theme
        self.layouts = _pick_layouts(prs)
        self.width = int(prs.slide_width or SLIDE_W)
        self.height = int(prs.slide_height or SLIDE_H)

    # -- text styles

    def _title_style(self, size: int | None, *, align: PP_ALIGN | None = PP_ALIGN.LEFT,
                     color: RGBColor | None = None) -> _Style:  # fmt: skip
        if self.theme is None:
            return _Style(size=size)
        return _Style(color=color or self.theme.title, font=self.theme.title_font, bold=True, size=size, align=align)

    def _body_style(self, size: int | None, *, color: RGBColor | None = None) -> _Style:
        if self.theme is None:
            return _Style(size=size)
        return _Style(color=color or self.theme.text, font=self.theme.body_font, size=size,
                      bullet_color=self.theme.accents[0])  # fmt: skip

    def _size(self, slide: Slide, idx: int, style: str, fitted: int) -> int | None:
        """With a template, its own size unless the text needs a smaller one."""
        if self.theme is not None:
            return fitted
        inherited = _inherited_size(slide, idx, style)
        return fitted if inherited is None or fitted < inherited else None

    # -- building blocks

    def _new(self, kind: Kind) -> Slide:
        layout = self.layouts[kind] or self.layouts["bullets"]
        assert layout is not None  # check_template refused layout-less files
        slide = self.prs.slides.add_slide(layout)
        if self.theme is None:
            _pin_placeholders(slide, layout)
        return slide

    def _title(self, slide: Slide, text: str, *, rect: Rect | None = None, biggest: int = 36, smallest: int = 20,
               anchor: MSO_ANCHOR = MSO_ANCHOR.BOTTOM, align: PP_ALIGN | None = PP_ALIGN.LEFT,
               color: RGBColor | None = None) -> None:  # fmt: skip
        shape = slide.shapes.title
        if self.theme is None:  # the template places the title
            rect = None
        if shape is None:  # a template layout without a title: the title in a text box where one would be
            shape = slide.shapes.add_textbox(*(Emu(v) for v in rect or self._title_rect()))
        elif rect is not None:
            _place(shape, rect)
        box = _rect(shape) or self._title_rect()
        fitted = _fit([text], box[2] - 2 * INSET, box[3], biggest=biggest, smallest=smallest, gap=0, bold=True)
        size = self._size(slide, 0, "titleStyle", fitted)
        frame = shape.text_frame
        _write(frame, [text], self._title_style(size, align=align, color=color))
        if self.theme is not None:
            frame.vertical_anchor = anchor
            frame.auto_size = MSO_AUTO_SIZE.NONE
            for para in frame.paragraphs:
                for run in para.runs:
                    run._r.get_or_add_rPr().set("cap", "none")  # the default section layout sets all caps

    def _title_rect(self) -> Rect:
        if self.theme is not None:
            return TITLE_BOX
        w, h = self.width, self.height
        return round(w * 0.06), round(h * 0.05), round(w * 0.88), round(h * 0.15)

    def _body_rect(self) -> Rect:
        """Where content goes under the title: the template's content placeholder, else our body box."""
        if self.theme is not None:
            return BODY_BOX
        layout = self.layouts["bullets"]
        if layout is not None:
            for ph in _placeholders(layout):
                if ph.placeholder_format.type in _BODIES and (found := _rect(ph)) is not None:
                    return found
        w, h = self.width, self.height
        return round(w * 0.06), round(h * 0.24), round(w * 0.88), round(h * 0.68)

    def _bodies(self, slide: Slide) -> list[Any]:
        return sorted((ph for ph in slide.placeholders if ph.placeholder_format.type in _BODIES),
                      key=lambda ph: (int(ph.left or 0), int(ph.top or 0)))  # fmt: skip

    def _subtitle_shape(self, slide: Slide) -> Any | None:
        for ph in slide.placeholders:
            if ph.placeholder_format.type == PP_PLACEHOLDER.SUBTITLE:
                return ph
        bodies = self._bodies(slide)
        return bodies[0] if bodies else None

    def _rule(self, slide: Slide) -> None:
        """The short accent bar under a content slide's title."""
        if self.theme is not None:
            _band(slide, (MARGIN + INSET, RULE_TOP, Inches(1.1), Inches(0.07)), self.theme.accents[0])

    def _bullets_in(self, slide: Slide, shape: Any, items: Sequence[str], size: int | None) -> None:
        _write(shape.text_frame, list(items), self._body_style(size), bullets=True)
        # Our size should fit; "shrink on overflow" is the editor's safety net where the estimate falls short.
        shape.text_frame.auto_size = MSO_AUTO_SIZE.TEXT_TO_FIT_SHAPE
        if self.theme is not None:
            shape.text_frame.vertical_anchor = MSO_ANCHOR.TOP

    def _fit_body(self, items: Sequence[str], rect: Rect) -> int:
        return _fit(items, rect[2] - 2 * INSET - BULLET_INDENT, rect[3], biggest=28, smallest=8)

    def _clear_empty(self, slide: Slide) -> None:
        """Placeholders left empty would show "Click to add text" in an editor: remove them."""
        for ph in list(slide.placeholders):
            if ph.placeholder_format.type in (PP_PLACEHOLDER.TITLE, PP_PLACEHOLDER.CENTER_TITLE):
                continue
            if ph.has_text_frame and not ph.text_frame.text.strip():
                _remove(ph)

    # -- layouts

    def title_slide(self, content: SlideContent) -> Slide:
        slide = self._new("title")
        theme = self.theme
        if theme is not None:
            _band(slide, (0, SLIDE_H - Inches(0.3), SLIDE_W, Inches(0.3)), theme.accents[0])
            _band(slide, (Inches(0.9), Inches(4.3), Inches(1.6), Inches(0.08)), theme.accents[0])
        self._title(slide, content.title, rect=(Inches(0.9), Inches(1.3), Inches(11.5), Inches(2.85)), biggest=48,
                    smallest=28, align=PP_ALIGN.LEFT if theme else None)  # fmt: skip
        self._subtitle(slide, content.subtitle, (Inches(0.9), Inches(4.6), Inches(11.5), Inches(1.6)))
        return slide

    def section_slide(self, content: SlideContent) -> Slide:
        slide = self._new("section")
        theme = self.theme
        band = (0, Inches(2.3), SLIDE_W, Inches(2.3))
        color = None
        if theme is not None:
            _band(slide, band, theme.accents[0])
            _band(slide, (0, Inches(2.3), Inches(0.25), Inches(2.3)), theme.accents[1])
            color = _on(theme.accents[0])
        self._title(slide, content.title, rect=(Inches(0.9), band[1], Inches(11.5), band[3]), biggest=44,
                    smallest=24, anchor=MSO_ANCHOR.MIDDLE, align=PP_ALIGN.LEFT if theme else None,
                    color=color)  # fmt: skip
        self._subtitle(slide, content.subtitle, (Inches(0.9), Inches(4.85), Inches(11.5), Inches(1.5)))
        return slide

    def _subtitle(self, slide: Slide, text: str | None, rect: Rect) -> None:
        shape = self._subtitle_shape(slide)
        if text and text.strip():
            if shape is None:  # a template layout without one: a text box under the title
                if self.theme is None:
                    title = slide.shapes.title
                    tx, ty, tw, th = (_rect(title) if title is not None else None) or self._title_rect()
                    rect = tx, ty + th, tw, min(round(self.height * 0.2), max(self.height - ty - th, Inches(0.5)))
                shape = slide.shapes.add_textbox(*(Emu(v) for v in rect))
            elif self.theme is not None:
                _place(shape, rect)
            box = _rect(shape) or rect
            fitted = _fit([text], box[2] - 2 * INSET, box[3], biggest=26, smallest=14)
            size = self._size(slide, shape.placeholder_format.idx, "bodyStyle", fitted) \
                if shape.is_placeholder else fitted  # fmt: skip
            _write(shape.text_frame, [text], self._body_style(size))
            if self.theme is not None:
                shape.text_frame.vertical_anchor = MSO_ANCHOR.TOP
                shape.text_frame.auto_size = MSO_AUTO_SIZE.NONE
                for para in shape.text_frame.paragraphs:
                    para.alignment = PP_ALIGN.LEFT
        self._clear_empty(slide)

    def bullets_slide(self, content: SlideContent) -> Slide:
        slide = self._new("bullets")
        self._title(slide, content.title, rect=TITLE_BOX)
        self._rule(slide)
        bodies = self._bodies(slide)
        items = [b for b in content.bullets if b.strip()]
        if bodies and items:
            body = bodies[0]
            if self.theme is not None:
                _place(body, BODY_BOX)
            rect = _rect(body) or self._body_rect()
            size = self._size(slide, body.placeholder_format.idx, "bodyStyle", self._fit_body(items, rect))
            self._bullets_in(slide, body, items, size)
        elif items:  # a layout without a body: the bullets in a text box
            self._textbox_bullets(slide, items, self._body_rect())
        self._clear_empty(slide)
        return slide

    def _textbox_bullets(self, slide: Slide, items: Sequence[str], rect: Rect, size: int | None = None) -> None:
        box = slide.shapes.add_textbox(*(Emu(v) for v in rect))
        size = size or self._fit_body(items, rect)
        _write(box.text_frame, list(items), self._body_style(size) if self.theme else _Style(size=size))
        for para in box.text_frame.paragraphs:
            _bullet(para._p, self.theme.accents[0] if self.theme else None, char=True)

    def two_columns_slide(self, content: SlideContent) -> Slide:
        left = [b for b in content.bullets if b.strip()]
        right = [b for b in content.right if b.strip()]
        two = self.layouts["two_columns"]
        slide = self._new("two_columns" if two is not None else "bullets")
        self._title(slide, content.title, rect=TITLE_BOX)
        self._rule(slide)
        gutter = Inches(0.4)
        body_rect = self._body_rect()
        x, y, w, h = body_rect
        half = (w - gutter) // 2
        rects = [(x, y, half, h), (x + half + gutter, y, half, h)]
        bodies = self._bodies(slide)
        if self.theme is not None or two is None or not _side_by_side(bodies):
            for body, rect in zip(bodies, rects, strict=False):
                _place(body, rect)
        placed = [(_rect(b) or r) for b, r in zip(bodies, rects, strict=False)] + rects[len(bodies) :]
        fitted = min(self._fit_body(items, rect) for items, rect in zip((left, right), placed, strict=False)
                     if items) if left or right else 28  # fmt: skip
        for i, items in enumerate((left, right)):
            if not items:
                continue
            if i < len(bodies):
                size = self._size(slide, bodies[i].placeholder_format.idx, "bodyStyle", fitted)
                self._bullets_in(slide, bodies[i], items, size)
            else:
                self._textbox_bullets(slide, items, placed[i], fitted)
        self._clear_empty(slide)
        return slide

    def _content_slide(self, content: SlideContent) -> tuple[Slide, Rect]:
        """A title-only slide and the free rectangle under its title."""
        slide = self._new("title_only" if self.layouts["title_only"] is not None else "bullets")
        self._title(slide, content.title, rect=TITLE_BOX)
        self._rule(slide)
        rect = self._body_rect()
        for body in self._bodies(slide):  # the bullets layout standing in for a title-only one
            rect = _rect(body) or rect
            _remove(body)
        self._clear_empty(slide)
        return slide, rect

    def _caption(self, slide: Slide, kept: list[str], size: int, rect: Rect) -> None:
        """The bullets under a table or chart, as a short caption."""
        box = slide.shapes.add_textbox(*(Emu(v) for v in rect))
        muted = _blend(self.theme.text, self.theme.background, 0.2) if self.theme else None
        _write(box.text_frame, kept, self._body_style(size, color=muted) if self.theme else _Style(size=size),
               gap=CAPTION_GAP)  # fmt: skip

    def table_slide(self, content: SlideContent, table: TableData) -> Slide:
        slide, rect = self._content_slide(content)
        caption = _caption_fit(content.bullets, rect[2])
        if caption is not None and _table_fits(table, _shorter(rect, caption[2] + CAPTION_SPACE)):
            bottom = _add_table(slide, table, _shorter(rect, caption[2] + CAPTION_SPACE), self.theme)
            self._caption(slide, caption[0], caption[1], (rect[0], bottom + CAPTION_SPACE, rect[2], caption[2]))
        else:  # no room for a caption: the table alone
            _add_table(slide, table, rect, self.theme)
        return slide

    def chart_slide(self, content: SlideContent, chart: ChartData) -> Slide:
        slide, rect = self._content_slide(content)
        caption = _caption_fit(content.bullets, rect[2])
        if caption is not None:
            x, y, w, h = _shorter(rect, caption[2] + CAPTION_SPACE)
            self._caption(slide, caption[0], caption[1], (x, y + h + CAPTION_SPACE, w, caption[2]))
            rect = x, y, w, h
        _add_chart(slide, chart, rect, self.theme)
        return slide

    def render(self, content: SlideContent) -> None:
        if content.layout == "title":
            slide = self.title_slide(content)
        elif content.layout == "section":
            slide = self.section_slide(content)
        elif content.layout == "two_columns":
            slide = self.two_columns_slide(content)
        elif content.layout == "table" and content.table is not None:
            slide = self.table_slide(content, content.table)
        elif content.layout == "chart" and content.chart is not None:
            slide = self.chart_slide(content, content.chart)
        else:  # bullets, and a table or chart slide without its data
            slide = self.bullets_slide(content)
        notes = _notes(content)
        frame = slide.notes_slide.notes_text_frame if notes else None
        if frame is not None:
            frame.text = notes


def _shorter(rect: Rect, by: int) -> Rect:
    return rect[0], rect[1], rect[2], rect[3] - by


def _caption_fit(items: Sequence[str], width: int) -> tuple[list[str], int, int] | None:
    """The caption's bullets (as many as fit in a short caption, from the first), point size and height."""
    inner = width - 2 * INSET
    kept = [b for b in items if b.strip()]
    while kept and _text_height(kept, 11, inner, CAPTION_GAP) > CAPTION_MAX_H / 12_700 - 8:
        kept = kept[:-1]
    if not kept:
        return None
    size = _fit(kept, inner, CAPTION_MAX_H, biggest=16, smallest=11, gap=CAPTION_GAP)
    return kept, size, round((_text_height(kept, size, inner, CAPTION_GAP) + 10) * 12_700)


# -- tables -----------------------------------------------------------------------------------------------------

CELL_MARGIN_X = Inches(0.08)
CELL_MARGIN_Y = Inches(0.04)
_NUMBER = re.compile(r"^[\s$€£¥+\-−(]*[\d.,\s]+[%)kKmMbB]*\s*$")


def _column_widths(table: TableData, width: int) -> list[int]:
    """Widths by how much each column says, none under half an even share."""
    weights = []
    for c, header in enumerate(table.columns):
        longest = max([len(header)] + [len(row[c]) for row in table.rows])
        weights.append(min(max(longest, 4), 40))
    even = width / len(weights)
    raw = [width * w / sum(weights) for w in weights]
    floored = [max(r, even * 0.5) for r in raw]
    scale = width / sum(floored)
    widths = [int(f * scale) for f in floored]
    widths[-1] += width - sum(widths)
    return widths


def _row_heights(table: TableData, widths: Sequence[int], size: int) -> list[int]:
    heights = []
    for r, row in enumerate([table.columns, *table.rows]):
        lines = max(_lines(cell or " ", size, w - 2 * CELL_MARGIN_X, bold=r == 0)
                    for cell, w in zip(row, widths, strict=True))  # fmt: skip
        heights.append(round(lines * size * LINE * 12_700 + 2 * CELL_MARGIN_Y + Pt(size * 0.5)))
    return heights


def _table_size(table: TableData, rect: Rect) -> tuple[int, list[int], list[int]] | None:
    """The largest font size (20 down to 9) at which the table fits the rectangle, with its columns and rows."""
    widths = _column_widths(table, rect[2])
    for size in range(20, 8, -1):
        heights = _row_heights(table, widths, size)
        if sum(heights) <= rect[3]:
            return size, widths, heights
    return None


def _table_fits(table: TableData, rect: Rect) -> bool:
    found = _table_size(table, rect)
    return found is not None and found[0] >= 12


def _add_table(slide: Slide, data: TableData, rect: Rect, theme: Theme | None) -> int:
    """The table at the top of ``rect`` in the largest size that fits; where it ends."""
    found = _table_size(data, rect)
    widths = _column_widths(data, rect[2])
    size, heights = (found[0], found[2]) if found else (9, _row_heights(data, widths, 9))
    x, y, w, _ = rect
    frame = slide.shapes.add_table(len(data.rows) + 1, len(data.columns), Emu(x), Emu(y), Emu(w), Emu(sum(heights)))
    table = frame.table
    table.first_row = True
    table.horz_banding = True
    for c, width in enumerate(widths):
        table.columns[c].width = Emu(width)
    for r, height in enumerate(heights):
        table.rows[r].height = Emu(height)
    numeric = [all(_NUMBER.match(r[c]) for r in data.rows if r[c]) and any(r[c] for r in data.rows)
               for c in range(len(data.columns))]  # fmt: skip
    for r, values in enumerate([data.columns, *data.rows]):
        for c, value in enumerate(values):
            cell = table.cell(r, c)
            cell.margin_left = cell.margin_right = CELL_MARGIN_X
            cell.margin_top = cell.margin_bottom = CELL_MARGIN_Y
            cell.vertical_anchor = MSO_ANCHOR.MIDDLE
            style = _Style(size=size, bold=True if r == 0 else None, align=PP_ALIGN.RIGHT if numeric[c] else None)
            if theme is not None:
                fill = theme.accents[0] if r == 0 else _blend(theme.background, theme.text, 0.05 if r % 2 else 0.11)
                cell.fill.solid()
                cell.fill.fore_color.rgb = fill
                style = _Style(color=_on(fill) if r == 0 else theme.text, font=theme.body_font, size=size,
                               bold=style.bold, align=style.align)  # fmt: skip
            _write(cell.text_frame, [value], style)
    return y + sum(heights)


# -- charts -----------------------------------------------------------------------------------------------------

_CHART_TYPES = {
    "bar": XL_CHART_TYPE.BAR_CLUSTERED,
    "column": XL_CHART_TYPE.COLUMN_CLUSTERED,
    "line": XL_CHART_TYPE.LINE_MARKERS,
    "pie": XL_CHART_TYPE.PIE,
}


def _add_chart(slide: Slide, data: ChartData, rect: Rect, theme: Theme | None) -> None:
    pie = data.type == "pie"
    series = data.series[:1] if pie else data.series
    chart_data = CategoryChartData()
    chart_data.categories = [c or " " for c in data.categories]
    for s in series:
        chart_data.add_series(s.name or " ", [float(v) for v in s.values])
    x, y, w, h = rect
    frame = slide.shapes.add_chart(  # typed for the deprecated ChartData, its subclass
        _CHART_TYPES[data.type],
        Emu(x),
        Emu(y),
        Emu(w),
        Emu(h),
        chart_data,  # type: ignore[arg-type]
    )
    chart = frame.chart  # type: ignore[attr-defined]  # add_chart returns the graphic frame, typed as its chart
    chart.has_title = False  # the slide's title says it
    chart.has_legend = pie or len(series) > 1
    if chart.has_legend:
        chart.legend.position = XL_LEGEND_POSITION.RIGHT if pie else XL_LEGEND_POSITION.BOTTOM
        chart.legend.include_in_layout = False
    size = 14 if len(data.categories) <= 8 else 12 if len(data.categories) <= 16 else 10
    chart.font.size = Pt(size)
    plot = chart.plots[0]
    plot.vary_by_categories = pie
    if pie:
        plot.has_data_labels = True
        labels = plot.data_labels
        labels.number_format = "0%"
        labels.number_format_is_linked = False
        labels.show_percentage = True
        labels.show_value = False
        labels.position = XL_LABEL_POSITION.OUTSIDE_END
    elif data.type in ("bar", "column"):
        plot.gap_width = 60
        plot.overlap = -10 if len(series) > 1 else 0
    if theme is not None:
        _theme_chart(chart, data.type, theme)


def _cycled(theme: Theme, i: int) -> RGBColor:
    """The i-th accent; past the last, lighter ones (so a pie's last slice never looks like its first)."""
    n = len(theme.accents)
    return _blend(theme.accents[i % n], theme.background, min(0.75, 0.4 * (i // n) ** 0.7))


def _theme_chart(chart: Chart, kind: str, theme: Theme) -> None:
    """Our colours on a chart: series in the accents, text and grid in the theme's text colour."""
    accents = theme.accents
    chart.font.color.rgb = theme.text
    chart.font.name = theme.body_font
    plot = chart.plots[0]
    if kind == "pie":
        for i, point in enumerate(plot.series[0].points):
            point.format.fill.solid()
            point.format.fill.fore_color.rgb = _cycled(theme, i)
            point.format.line.color.rgb = theme.background
        return
    for i, series in enumerate(plot.series):
        color = accents[i % len(accents)]
        if kind == "line":
            series.smooth = False
            series.format.line.color.rgb = color
            series.format.line.width = Pt(2.75)
            series.marker.style = XL_MARKER_STYLE.CIRCLE
            series.marker.size = 7
            series.marker.format.fill.solid()
            series.marker.format.fill.fore_color.rgb = color
            series.marker.format.line.color.rgb = color
        else:
            series.format.fill.solid()
            series.format.fill.fore_color.rgb = color
    grid = _blend(theme.background, theme.text, 0.18)
    value_axis, category_axis = chart.value_axis, chart.category_axis
    value_axis.has_major_gridlines = True
    value_axis.major_gridlines.format.line.color.rgb = grid
    value_axis.format.line.fill.background()
    category_axis.format.line.color.rgb = _blend(theme.background, theme.text, 0.4)
    for axis in (value_axis, category_axis):
        axis.tick_labels.font.color.rgb = theme.text


# -- the whole deck ---------------------------------------------------------------------------------------------


def _apply_theme(prs: PresentationObj, theme: Theme) -> None:
    """A 16:9 page, with the master's background, colours and fonts set to the theme, so slides added later in an
    editor look like the rest."""
    factor = SLIDE_W / int(prs.slide_width or SLIDE_W)
    prs.slide_width, prs.slide_height = Emu(SLIDE_W), Emu(SLIDE_H)
    master = prs.slide_master
    for part in (master, *master.slide_layouts):
        for xfrm in part.element.xpath("./p:cSld/p:spTree/*/p:spPr/a:xfrm"):
            for child, attr in ((xfrm.find(qn("a:off")), "x"), (xfrm.find(qn("a:ext")), "cx")):
                if child is not None:
                    child.set(attr, str(round(int(child.get(attr)) * factor)))
    master.background.fill.solid()
    master.background.fill.fore_color.rgb = theme.background
    theme_part = master.part.part_related_by(RT.THEME)
    root = parse_xml(theme_part.blob)
    colors = {"dk1": theme.text, "lt1": theme.background, "dk2": theme.title,
              "lt2": _blend(theme.background, theme.text, 0.1), "hlink": theme.accents[0],
              "folHlink": theme.accents[3 % len(theme.accents)]}  # fmt: skip
    colors |= {f"accent{i + 1}": c for i, c in enumerate(theme.accents[:6])}
    scheme = root.find(f"{qn('a:themeElements')}/{qn('a:clrScheme')}")
    if scheme is not None:
        scheme.set("name", theme.label)
        for slot, color in colors.items():
            holder = scheme.find(qn(f"a:{slot}"))
            if holder is not None:
                holder.clear()
                srgb = OxmlElement("a:srgbClr")
                srgb.set("val", str(color))
                holder.append(srgb)
    fonts = root.find(f"{qn('a:themeElements')}/{qn('a:fontScheme')}")
    if fonts is not None:
        for which, face in (("a:majorFont", theme.title_font), ("a:minorFont", theme.body_font)):
            latin = fonts.find(f"{qn(which)}/{qn('a:latin')}")
            if latin is not None:
                latin.set("typeface", face)
    theme_part._blob = serialize_part_xml(root)  # the theme is a plain (blob) part in python-pptx


FIXED_TIME = (2024, 1, 1, 0, 0, 0)


def _stable_zip(data: bytes) -> bytes:
    """The package again with fixed member times (and fixed dates inside embedded chart workbooks), so the same
    deck gives the same bytes."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            blob = src.read(info.filename)
            if info.filename.endswith(".xlsx"):
                blob = _stable_workbook(blob)
            member = zipfile.ZipInfo(info.filename, FIXED_TIME)
            member.compress_type = zipfile.ZIP_DEFLATED
            dst.writestr(member, blob)
    return out.getvalue()


_CREATED = re.compile(rb"(<dcterms:(?:created|modified)[^>]*>)[^<]*(</dcterms:)")


def _stable_workbook(blob: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(blob)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "docProps/core.xml":
                data = _CREATED.sub(rb"\g<1>2024-01-01T00:00:00Z\g<2>", data)
            member = zipfile.ZipInfo(info.filename, FIXED_TIME)
            member.compress_type = zipfile.ZIP_DEFLATED
            dst.writestr(member, data)
    return out.getvalue()


def render_deck(spec: DeckSpec, *, theme: str = "light", template: bytes | None = None) -> bytes:
    """The deck as .pptx bytes: in ``theme`` (16:9), or in the template's masters and layouts when one is given
    (its slides dropped). Raises ``ValueError`` for an unknown theme or an unusable template."""
    if template is not None:
        prs = _usable(_open(template))
        _empty_of_slides(prs)
        deck = _Deck(prs, None)
    else:
        if theme not in THEMES:
            raise ValueError(f"unknown theme {theme!r} (one of {', '.join(THEMES)})")
        prs = Presentation()
        _apply_theme(prs, THEMES[theme])
        deck = _Deck(prs, THEMES[theme])
        prs.core_properties.author = "agent-ui"
        prs.core_properties.last_modified_by = "agent-ui"
        prs.core_properties.comments = ""
    prs.core_properties.title = spec.title[:255]
    for content in spec.slides:
        deck.render(content)
    out = io.BytesIO()
    prs.save(out)
    return _stable_zip(out.getvalue())


__all__ = ["THEMES", "Theme", "check_template", "render_deck", "template_layouts"]
