"""The docs say what the code and the measurements say: BENCHMARKS.md is what bench/report.py writes from
bench/results/; the weights tables are those of the configs; a figure about the shipped weights' accuracy quoted in
prose carries a marker naming the config.json metric it quotes, and matches it; every relative link resolves; the
README stays short and keeps the Space's front matter.

The marker, an HTML comment right after the figure (invisible once rendered)::

    DDAMFN reads 84.40%<!-- metric: ddamfn ferplus_valid.accuracy --> on FER+ valid

In README.md and docs/*.md (but the dated log, docs/experiments.md) a percentage with decimals must carry one;
README.md quotes figures only through the generated weights table.
"""
import json
import re
from pathlib import Path

import pytest
import yaml

from bench import report
from conftest import ROOT

README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
LOG = ROOT / "docs" / "experiments.md"  # dated: each figure is of the weights of its day
LINKED = [README, ROOT / "BENCHMARKS.md", ROOT / "weights" / "README.md", *DOCS]
MARKER = re.compile(r"(\d+(?:\.\d+)?)%<!-- metric: (\w+) ([\w.]+) -->")
DECIMAL_PERCENT = re.compile(r"(?<![\w.])\d+\.\d+%")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
TABLE = re.compile(r"<!-- weights-table: begin -->.*?<!-- weights-table: end -->", re.S)


def prose(text: str) -> str:
    """The text without fenced code blocks and inline code, where nothing is a link or a quoted figure."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    return re.sub(r"`[^`\n]*`", "", text)


def headings(path: Path) -> set[str]:
    """The anchors of a Markdown file's headings (outside fenced code)."""
    text = re.sub(r"^```.*?^```", "", path.read_text(), flags=re.S | re.M)
    return {report.slug(m) for m in re.findall(r"^#+ (.+)$", text, re.M)}


def metric(key: str, dotted: str) -> float:
    value = json.loads((ROOT / "weights" / key / "config.json").read_text())["metrics"]
    for part in dotted.split("."):
        value = value[part]
    return value


def test_benchmarks_md_is_written_from_the_results():
    assert (ROOT / "BENCHMARKS.md").read_text() == report.render(), "run: python -m bench.report"
    assert report.main(["--check"]) == 0


def test_the_report_takes_any_result_in_its_order(tmp_path):
    base = json.loads((ROOT / "bench" / "results" / "engines.json").read_text())
    for name in ("zeta_new", "engines", "alpha_new", "page"):
        (tmp_path / f"{name}.json").write_text(json.dumps(dict(base, name=name, title=f"Title {name}")))
    text = report.render(tmp_path)
    order = [text.index(f"## Title {n}") for n in ("page", "engines", "alpha_new", "zeta_new")]
    assert order == sorted(order)  # ORDER first, then names it does not know, alphabetically
    (tmp_path / "bad.json").write_text(json.dumps(dict(base, name="bad", rows=[["one cell"]])))
    with pytest.raises(report.ResultError, match="bad.json: row 0 has 1 cells for 11 columns"):
        report.render(tmp_path)
    (tmp_path / "bad.json").write_text(json.dumps(dict(base, name="bad", date="2 December")))
    with pytest.raises(report.ResultError, match="not YYYY-MM-DD"):
        report.render(tmp_path)


def test_the_weights_tables_are_those_of_the_configs(capsys):
    from fer_core.commands import weights_table

    assert weights_table.main(["--check"]) == 0, capsys.readouterr().out


def misquoted(text: str) -> list[tuple]:
    """``(figure, key, metric)`` of each marked figure that is not its config's value at the figure's precision."""
    out = []
    for figure, key, dotted in MARKER.findall(prose(text)):
        if float(figure) != round(100 * metric(key, dotted), len(figure.partition(".")[2])):
            out.append((figure, key, dotted))
    return out


def test_figures_quoted_in_the_docs_are_the_configs():
    outside_table = prose(TABLE.sub("", README.read_text()))
    assert not re.findall(r"\d%", outside_table), "the README quotes figures only through the weights table"
    for path in [README, *DOCS]:
        text = path.read_text()
        assert not misquoted(text), (path.name, misquoted(text))
        if path != LOG:
            unmarked = DECIMAL_PERCENT.findall(MARKER.sub("", prose(TABLE.sub("", text))))
            assert not unmarked, f"{path.name}: {unmarked} without a metric marker (see this test's docstring)"
    assert MARKER.findall(prose((ROOT / "docs" / "training.md").read_text()))  # the docs do quote through it
    true = round(100 * metric("fusion", "ferplus_valid.accuracy"), 2)
    assert not misquoted(f"{true:.2f}%<!-- metric: fusion ferplus_valid.accuracy -->")
    assert misquoted(f"{true + 0.1:.2f}%<!-- metric: fusion ferplus_valid.accuracy -->")  # a stale figure fails


@pytest.mark.parametrize("path", LINKED, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(path):
    for target in LINK.findall(prose(path.read_text())):
        if re.match(r"[a-z]+:", target):
            continue  # http(s), mailto
        file, _, anchor = target.partition("#")
        dest = (path.parent / file).resolve() if file else path
        assert dest.exists(), f"{path.name}: {target} does not exist"
        if anchor and dest.suffix == ".md":
            assert anchor in headings(dest), f"{path.name}: {target}: no such heading in {dest.name}"


def test_the_readme_is_short_and_keeps_the_spaces_front_matter():
    text = README.read_text()
    assert len(text.splitlines()) <= 150
    assert text.startswith("---\n")
    front = yaml.safe_load(text.split("---", 2)[1])
    assert front["sdk"] == "gradio" and front["app_file"] == "app.py" and front["sdk_version"]
    first_lines = " ".join(text.split("---", 2)[2].split("\n")[:8])
    assert "facial-expression-recognition system" in first_lines  # what it is, first


def test_no_doc_points_outside_the_repository():
    for path in [README, *DOCS]:
        assert "../shared" not in path.read_text(), path.name
