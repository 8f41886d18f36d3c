"""The deck renderer on real files: every layout in every theme read back with python-pptx (titles, bullet
paragraphs, notes with their sources, table cells, native charts), awkward content that must not break it, a user's
template whose layouts and fonts are used and whose own slides are gone, and the check that answers 415."""

from __future__ import annotations

import io
import re
import zipfile
from typing import Any

import pytest
from pptx import Presentation
from pptx.enum.chart import XL_CHART_TYPE
from pptx.enum.shapes import MSO_SHAPE_TYPE, PP_PLACEHOLDER
from pptx.oxml.ns import qn
from pptx.presentation import Presentation as PresentationObj
from pptx.slide import Slide
from pptx.util import Emu, Inches

from services.generation import render
from services.generation.schemas import ChartData, ChartSeries, DeckSpec, SlideCitation, SlideContent, TableData

BODIES = (PP_PLACEHOLDER.BODY, PP_PLACEHOLDER.OBJECT)
CITATIONS = [
    SlideCitation(n=2, resource_id="res_b", chunk_id="c9", title="Market study"),
    SlideCitation(n=1, resource_id="res_a", chunk_id="c1", title="Annual report 2023", page=4, heading="Costs"),
]
TABLE = TableData(
    columns=["Source", "2019", "2023"], rows=[["Solar", "580", "1,420"], ["Wind", "620"], ["Hydro", "1,300", "1,390"]]
)
COLUMNS = ChartData(
    type="column",
    categories=["2021", "2022", "2023"],
    series=[ChartSeries(name="Solar", values=[180, 240, 410]), ChartSeries(name="Wind", values=[95, 80, 115])],
)


def full_spec() -> DeckSpec:
    """Every layout once, with the kinds of chart."""
    return DeckSpec(
        title="Energy outlook",
        slides=[
            SlideContent(layout="title", title="Energy Outlook 2030", subtitle="Where growth comes from"),
            SlideContent(
                layout="bullets",
                title="Key findings",
                bullets=["Solar tripled", "Storage grows fastest", "Grids lag"],
                notes="Open with the headline.",
                citations=CITATIONS,
            ),
            SlideContent(
                layout="two_columns",
                title="Pros and cons",
                bullets=["Cheap capital", "PPAs"],
                right=["Supply chains", "Rates", "Curtailment"],
            ),
            SlideContent(layout="table", title="Capacity (GW)", bullets=["Source: IEA, rounded"], table=TABLE),
            SlideContent(layout="chart", title="Additions", chart=COLUMNS, citations=CITATIONS[1:]),
            SlideContent(layout="section", title="Part two", subtitle="The grid"),
            SlideContent(
                layout="chart",
                title="Share",
                chart=ChartData(
                    type="pie",
                    categories=["Coal", "Gas", "Wind"],
                    series=[
                        ChartSeries(name="2023", values=[50, 30, 20]),
                        ChartSeries(name="2019", values=[60, 30, 10]),
                    ],
                ),
            ),
            SlideContent(
                layout="chart",
                title="Prices",
                chart=ChartData(
                    type="line", categories=["A", "B"], series=[ChartSeries(name="Solar", values=[60, 41])]
                ),
            ),
            SlideContent(
                layout="chart",
                title="Sites",
                chart=ChartData(
                    type="bar", categories=["North", "South"], series=[ChartSeries(name="Sites", values=[12, 7])]
                ),
            ),
        ],
    )


def opened(data: bytes) -> PresentationObj:
    return Presentation(io.BytesIO(data))


def body_paragraphs(slide: Slide) -> list[list[str]]:
    """The paragraphs of each body placeholder, left to right."""
    bodies = sorted((ph for ph in slide.placeholders if ph.placeholder_format.type in BODIES), key=lambda ph: ph.left)
    return [[p.text for p in ph.text_frame.paragraphs] for ph in bodies]


def text_boxes(slide: Slide) -> list[list[str]]:
    shapes: list[Any] = list(slide.shapes)
    return [[p.text for p in s.text_frame.paragraphs] for s in shapes if s.shape_type == MSO_SHAPE_TYPE.TEXT_BOX]


def the(slide: Slide, attr: str) -> Any:
    """The slide's only shape that has ``attr`` true (has_table, has_chart)."""
    found = [shape for shape in slide.shapes if getattr(shape, attr, False)]
    assert len(found) == 1, f"{len(found)} shapes with {attr}"
    return found[0]


def title_runs(slide: Slide) -> list[Any]:
    assert slide.shapes.title is not None
    return [run for p in slide.shapes.title.text_frame.paragraphs for run in p.runs]


# -- themes ---------------------------------------------------------------------------------------------------


def test_every_theme_is_readable() -> None:
    """Four themes; text stands out from the background (dark has light text) and accents are distinct."""
    assert set(render.THEMES) == {"light", "dark", "ocean", "sunset"}

    def luminance(c: Any) -> float:
        ch = [(v / 255 / 12.92 if v / 255 <= 0.03928 else ((v / 255 + 0.055) / 1.055) ** 2.4) for v in c]
        return 0.2126 * ch[0] + 0.7152 * ch[1] + 0.0722 * ch[2]

    def contrast(a: Any, b: Any) -> float:
        hi, lo = sorted((luminance(a), luminance(b)), reverse=True)
        return (hi + 0.05) / (lo + 0.05)

    for theme in render.THEMES.values():
        assert contrast(theme.text, theme.background) >= 7, theme.name
        assert contrast(theme.title, theme.background) >= 7, theme.name
        assert len(set(theme.accents)) == len(theme.accents) >= 6
        assert theme.title_font and theme.body_font and theme.label
    dark = render.THEMES["dark"]
    assert luminance(dark.text) > luminance(dark.background)


@pytest.mark.parametrize("theme", sorted(render.THEMES))
def test_every_layout_in_every_theme(theme: str) -> None:
    spec = full_spec()
    prs = opened(render.render_deck(spec, theme=theme))
    look = render.THEMES[theme]

    assert (prs.slide_width, prs.slide_height) == (Emu(12_192_000), Emu(6_858_000))  # 16:9
    assert len(prs.slides) == len(spec.slides)
    assert [s.shapes.title.text for s in prs.slides] == [s.title for s in spec.slides]  # real title placeholders
    assert prs.core_properties.title == "Energy outlook"
    master_fill = prs.slide_master.background.fill
    assert master_fill.fore_color.rgb == look.background
    for slide in prs.slides:
        for run in title_runs(slide):
            assert run.font.name == look.title_font
            assert run.font.bold
        if slide.slide_layout.name != "Section Header":  # there the title sits on the accent band
            assert {run.font.color.rgb for run in title_runs(slide)} == {look.title}
    key = prs.slides[1]
    for para in key.placeholders[1].text_frame.paragraphs:
        assert {r.font.color.rgb for r in para.runs} == {look.text}
    table = the(prs.slides[3], "has_table").table
    assert table.cell(0, 0).fill.fore_color.rgb == look.accents[0]
    chart = the(prs.slides[4], "has_chart").chart
    assert [s.format.fill.fore_color.rgb for s in chart.plots[0].series] == list(look.accents[:2])


def test_layouts_read_back() -> None:
    prs = opened(render.render_deck(full_spec(), theme="light"))
    title, bullets, two, table_slide, column, section, pie, line, bar = prs.slides

    assert title.slide_layout.name == "Title Slide"
    assert title.shapes.title.placeholder_format.type == PP_PLACEHOLDER.CENTER_TITLE
    subtitle = [ph for ph in title.placeholders if ph.placeholder_format.type == PP_PLACEHOLDER.SUBTITLE]
    assert [ph.text_frame.text for ph in subtitle] == ["Where growth comes from"]

    assert bullets.slide_layout.name == "Title and Content"
    assert body_paragraphs(bullets) == [["Solar tripled", "Storage grows fastest", "Grids lag"]]
    assert two.slide_layout.name == "Two Content"
    assert body_paragraphs(two) == [["Cheap capital", "PPAs"], ["Supply chains", "Rates", "Curtailment"]]
    assert section.slide_layout.name == "Section Header"
    assert section.shapes.title.text == "Part two"
    assert [ph.text_frame.text for ph in section.placeholders if ph.placeholder_format.idx == 1] == ["The grid"]

    assert table_slide.slide_layout.name == "Title Only"
    table = the(table_slide, "has_table").table
    assert [[table.cell(r, c).text for c in range(3)] for r in range(4)] == [
        ["Source", "2019", "2023"],
        ["Solar", "580", "1,420"],
        ["Wind", "620", ""],
        ["Hydro", "1,300", "1,390"],
    ]
    assert table.first_row
    assert ["Source: IEA, rounded"] in text_boxes(table_slide)  # the bullets as its caption

    chart = the(column, "has_chart").chart
    assert chart.chart_type == XL_CHART_TYPE.COLUMN_CLUSTERED
    assert list(chart.plots[0].categories) == ["2021", "2022", "2023"]
    assert [(s.name, list(s.values)) for s in chart.plots[0].series] == [
        ("Solar", [180.0, 240.0, 410.0]),
        ("Wind", [95.0, 80.0, 115.0]),
    ]
    assert chart.has_legend  # two series

    pie_chart = the(pie, "has_chart").chart
    assert pie_chart.chart_type == XL_CHART_TYPE.PIE
    assert [(s.name, list(s.values)) for s in pie_chart.plots[0].series] == [("2023", [50.0, 30.0, 20.0])]
    assert pie_chart.has_legend
    assert pie_chart.plots[0].has_data_labels

    line_chart = the(line, "has_chart").chart
    assert line_chart.chart_type == XL_CHART_TYPE.LINE_MARKERS
    assert not line_chart.has_legend  # one series
    bar_chart = the(bar, "has_chart").chart
    assert bar_chart.chart_type == XL_CHART_TYPE.BAR_CLUSTERED
    assert list(bar_chart.plots[0].categories) == ["North", "South"]


def test_notes_carry_the_sources() -> None:
    prs = opened(render.render_deck(full_spec()))
    notes = prs.slides[1].notes_slide.notes_text_frame.text
    assert notes == "Open with the headline.\n\nSources:\n[1] Annual report 2023, p. 4, Costs\n[2] Market study"
    assert prs.slides[4].notes_slide.notes_text_frame.text == "Sources:\n[1] Annual report 2023, p. 4, Costs"
    assert not prs.slides[2].has_notes_slide  # neither notes nor sources


# -- awkward content ------------------------------------------------------------------------------------------


def body_size(slide: Slide) -> float:
    [body] = [ph for ph in slide.placeholders if ph.placeholder_format.type in BODIES]
    sizes = {run.font.size.pt for p in body.text_frame.paragraphs for run in p.runs}
    assert len(sizes) == 1
    return sizes.pop()


def test_edge_inputs_never_break_it() -> None:
    long_bullet = "A finding explained at length, with the numbers and the reasons behind them, " * 3
    spec = DeckSpec(
        title="",
        slides=[
            SlideContent(layout="bullets", title="Nothing to say"),
            SlideContent(layout="table", title="No table", bullets=["only words"]),
            SlideContent(layout="chart", title="No chart", bullets=["a", "b"]),
            SlideContent(layout="two_columns", title="One side", right=["right only"]),
            SlideContent(layout="title", title="T" * 200),
            SlideContent(layout="section", title=""),
            SlideContent(layout="bullets", title="Four", bullets=["short one", "short two", "three", "four"]),
            SlideContent(layout="bullets", title="Twelve", bullets=[f"point {i}" for i in range(12)]),
            SlideContent(layout="bullets", title="Twelve long", bullets=[long_bullet[:300]] * 12),
            SlideContent(layout="bullets", title="x " * 100, bullets=["  ", "kept"]),
            SlideContent(
                layout="chart",
                title="Blank names",
                chart=ChartData(type="pie", categories=[""], series=[ChartSeries(name="", values=[0])]),
            ),
        ],
    )
    for theme in render.THEMES:
        prs = opened(render.render_deck(spec, theme=theme))
        assert len(prs.slides) == len(spec.slides)
    empty, no_table, no_chart, one_side, long_title, bare_section, four, twelve, twelve_long, spaces, _ = prs.slides

    assert body_paragraphs(empty) == []  # no empty placeholder left to say "Click to add text"
    assert empty.shapes.title.text == "Nothing to say"
    assert body_paragraphs(no_table) == [["only words"]] and not any(s.has_table for s in no_table.shapes)
    assert body_paragraphs(no_chart) == [["a", "b"]] and not any(s.has_chart for s in no_chart.shapes)
    assert body_paragraphs(one_side) == [["right only"]]
    assert bare_section.shapes.title.text == ""
    assert body_paragraphs(spaces) == [["kept"]]

    def title_size(slide: Slide) -> float:
        return title_runs(slide)[0].font.size.pt

    assert title_size(long_title) < title_size(
        opened(render.render_deck(DeckSpec(title="t", slides=[SlideContent(layout="title", title="Short")]))).slides[0]
    )
    assert title_size(spaces) < title_size(four)
    assert len(body_paragraphs(twelve)[0]) == 12
    assert body_size(four) >= body_size(twelve) > body_size(twelve_long) >= 8
    assert body_size(four) >= 24


def test_no_slides_and_unknown_theme() -> None:
    assert len(opened(render.render_deck(DeckSpec(title="Empty", slides=[]))).slides) == 0
    with pytest.raises(ValueError, match="unknown theme"):
        render.render_deck(full_spec(), theme="neon")


def test_same_deck_same_bytes() -> None:
    """Deterministic, charts (with their embedded workbooks) included."""
    assert render.render_deck(full_spec(), theme="ocean") == render.render_deck(full_spec(), theme="ocean")


def test_thirty_slides_render_in_order() -> None:
    """Their speed is measured in bench.slides, not here."""
    spec = DeckSpec(title="Big", slides=(full_spec().slides * 4)[:30])
    prs = opened(render.render_deck(spec, theme="dark"))
    assert [s.shapes.title.text for s in prs.slides if s.shapes.title is not None][:5] == [
        slide.title for slide in spec.slides[:5]]
    assert len(prs.slides) == 30


# -- templates ------------------------------------------------------------------------------------------------


def make_template(*, drop: tuple[str, ...] = ()) -> bytes:
    """The default (4:3) template with a renamed content layout, a serif title font on the master, two slides of
    its own (one with notes) and, when asked, some layouts removed."""
    prs = Presentation()
    [latin] = prs.slide_master.element.xpath("./p:txStyles/p:titleStyle/a:lvl1pPr/a:defRPr/a:latin")
    latin.set("typeface", "DejaVu Serif")
    prs.slide_layouts[1].name = "Content (ours)"
    for name in drop:
        layout = prs.slide_layouts.get_by_name(name)
        assert layout is not None
        prs.slide_layouts.remove(layout)
    old = prs.slides.add_slide(prs.slide_layouts[0])
    old.shapes.title.text = "OLD TEMPLATE SLIDE"
    old = prs.slides.add_slide(prs.slide_layouts[1])
    old.shapes.title.text = "OLD SECOND"
    old.notes_slide.notes_text_frame.text = "old notes"
    out = io.BytesIO()
    prs.save(out)
    return out.getvalue()


def package_text(data: bytes) -> str:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return " ".join(archive.read(n).decode("utf-8", "replace") for n in archive.namelist() if n.endswith(".xml"))


def slide_parts(data: bytes) -> list[str]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return sorted(n for n in archive.namelist() if re.fullmatch(r"ppt/slides/slide\d+\.xml", n))


def test_template_layouts_fonts_and_no_old_slides() -> None:
    template = make_template()
    assert len(slide_parts(template)) == 2
    assert "Content (ours)" in render.template_layouts(template)
    assert render.template_layouts(template)[:4] == ["Title Slide", "Content (ours)", "Section Header", "Two Content"]

    data = render.render_deck(full_spec(), theme="dark", template=template)  # a template wins over the theme
    prs = opened(data)
    assert [s.slide_layout.name for s in prs.slides] == [
        "Title Slide",
        "Content (ours)",
        "Two Content",
        "Title Only",
        "Title Only",
        "Section Header",
        "Title Only",
        "Title Only",
        "Title Only",
    ]
    assert [s.shapes.title.text for s in prs.slides] == [s.title for s in full_spec().slides]
    assert (prs.slide_width, prs.slide_height) == (Inches(10), Inches(7.5))  # the template's page, not ours

    # The template's own slides are gone from the file, not just from the list.
    assert len(slide_parts(data)) == len(prs.slides)
    text = package_text(data)
    assert "OLD TEMPLATE SLIDE" not in text and "OLD SECOND" not in text and "old notes" not in text

    # Its fonts and colours stay: nothing of ours is forced on the text, and its master is untouched.
    for slide in prs.slides:
        for run in title_runs(slide):
            assert run.font.name is None and run.font.color.type is None
    assert prs.slide_master.element.xpath("./p:txStyles/p:titleStyle/a:lvl1pPr/a:defRPr/a:latin/@typeface") == [
        "DejaVu Serif"
    ]
    assert body_paragraphs(prs.slides[1]) == [["Solar tripled", "Storage grows fastest", "Grids lag"]]
    assert body_paragraphs(prs.slides[2]) == [["Cheap capital", "PPAs"], ["Supply chains", "Rates", "Curtailment"]]
    assert the(prs.slides[3], "has_table").table.cell(1, 0).text == "Solar"
    assert the(prs.slides[3], "has_table").table.cell(0, 0).fill.type is None  # the template's table style colours
    assert the(prs.slides[6], "has_chart").chart.chart_type == XL_CHART_TYPE.PIE
    assert prs.slides[1].notes_slide.notes_text_frame.text.endswith("[2] Market study")
    # Another render of the result (a template that had ours as slides) still works.
    assert len(opened(render.render_deck(full_spec(), template=data)).slides) == len(full_spec().slides)


def test_template_without_two_content_or_title_only() -> None:
    template = make_template(drop=("Two Content", "Title Only", "Comparison"))
    prs = opened(render.render_deck(full_spec(), template=template))
    two, table_slide = prs.slides[2], prs.slides[3]
    assert two.slide_layout.name == "Content (ours)"
    assert body_paragraphs(two) == [["Cheap capital", "PPAs"]]
    assert ["Supply chains", "Rates", "Curtailment"] in text_boxes(two)  # the right column as a text box
    assert table_slide.slide_layout.name == "Content (ours)"
    assert body_paragraphs(table_slide) == []  # its body placeholder removed for the table
    assert the(table_slide, "has_table").table.cell(2, 1).text == "620"


def test_template_numbering_its_placeholders_alike() -> None:
    """LibreOffice writes every content placeholder as idx 0, like the title: each still gets its own place."""
    prs = Presentation()
    for name in ("Title and Content", "Two Content"):
        layout = prs.slide_layouts.get_by_name(name)
        assert layout is not None
        for ph in list(layout.shapes):
            if ph.is_placeholder and ph.placeholder_format.type == PP_PLACEHOLDER.OBJECT:
                ph.element.xpath("./p:nvSpPr/p:nvPr/p:ph")[0].attrib.pop("idx")
    out = io.BytesIO()
    prs.save(out)
    deck = opened(render.render_deck(full_spec(), template=out.getvalue()))

    def bodies(slide: Slide) -> list[Any]:
        shapes: list[Any] = [sh for sh in slide.shapes if sh.is_placeholder]
        return sorted((sh for sh in shapes if sh.placeholder_format.type in BODIES), key=lambda sh: sh.left)

    bullets, two = deck.slides[1], deck.slides[2]
    [body] = bodies(bullets)
    assert body.top >= bullets.shapes.title.top + bullets.shapes.title.height  # under the title, not on it
    assert body.height > bullets.shapes.title.height
    assert [p.text for p in body.text_frame.paragraphs] == ["Solar tripled", "Storage grows fastest", "Grids lag"]
    left, right = bodies(two)
    assert left.left + left.width <= right.left  # side by side, not stacked on the title or each other
    assert left.top >= two.shapes.title.top + two.shapes.title.height
    assert [p.text for p in left.text_frame.paragraphs] == ["Cheap capital", "PPAs"]
    assert [p.text for p in right.text_frame.paragraphs] == ["Supply chains", "Rates", "Curtailment"]


def test_template_saved_as_potx_becomes_a_presentation() -> None:
    template = make_template()
    presentation = "application/vnd.openxmlformats-officedocument.presentationml.presentation.main+xml"
    potx_type = "application/vnd.openxmlformats-officedocument.presentationml.template.main+xml"
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(template)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            blob = src.read(info.filename)
            if info.filename == "[Content_Types].xml":
                blob = blob.replace(presentation.encode(), potx_type.encode())
            dst.writestr(info, blob)
    potx = out.getvalue()
    render.check_template(potx)
    data = render.render_deck(full_spec(), template=potx)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        types = archive.read("[Content_Types].xml").decode()
    assert presentation in types and potx_type not in types


def zipped(files: dict[str, str]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return out.getvalue()


DOCX_TYPES = (
    '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.'
    'wordprocessingml.document.main+xml"/></Types>'
)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"%PDF-1.7 not a zip at all", "not a zip"),
        (zipped({"hello.txt": "hi"}), "not an Office document"),
        (zipped({"[Content_Types].xml": DOCX_TYPES, "word/document.xml": "<w:document/>"}), "not a PowerPoint"),
        (
            zipped(
                {"[Content_Types].xml": DOCX_TYPES.replace("wordprocessingml.document", "presentationml.presentation")}
            ),
            "cannot be read",
        ),
    ],
)
def test_check_template_refuses(data: bytes, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        render.check_template(data)
    with pytest.raises(ValueError):
        render.render_deck(full_spec(), template=data)


def test_check_template_takes_a_real_pptx() -> None:
    render.check_template(make_template())
    render.check_template(render.render_deck(full_spec()))  # one of our decks serves as a template too
    prs = Presentation()
    for layout in list(prs.slide_layouts):
        prs.slide_layouts.remove(layout)
    out = io.BytesIO()
    prs.save(out)
    with pytest.raises(ValueError, match="no slide layouts"):
        render.check_template(out.getvalue())


def test_rendered_xml_is_well_ordered() -> None:
    """The bullet colour sits where the schema wants it in a paragraph's properties (before the bullet itself)."""
    prs = opened(render.render_deck(full_spec()))
    ppr = prs.slides[1].placeholders[1].text_frame.paragraphs[0]._p.pPr
    names = [child.tag for child in ppr]
    assert names.index(qn("a:buClr")) > names.index(qn("a:lnSpc"))
    assert all(tag in (qn("a:lnSpc"), qn("a:spcBef"), qn("a:buClr")) for tag in names)
