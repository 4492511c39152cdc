from __future__ import annotations

from modules.prompts.parser import strip_comments
from modules.prompts.styles import PromptStyle, StyleDatabase


def test_placeholder_and_append(tmp_path):
    db = StyleDatabase(tmp_path / "styles.csv")
    db.save_style(PromptStyle("frame", "a painting of {prompt}, framed", "ugly"))
    db.save_style(PromptStyle("hq", "masterpiece, best quality", "lowres"))
    assert db.apply_styles_to_prompt("a cat", ["frame"]) == "a painting of a cat, framed"
    assert db.apply_styles_to_prompt("a cat", ["hq"]) == "a cat, masterpiece, best quality"
    assert db.apply_negative_styles_to_prompt("", ["frame", "hq"]) == "ugly, lowres"
    assert db.apply_styles_to_prompt("a cat", ["nope"]) == "a cat"


def test_file_round_trip_with_commas_quotes_and_newlines(tmp_path):
    path = tmp_path / "styles.csv"
    db = StyleDatabase(path)
    db.save_style(PromptStyle("tricky", 'a "quoted", comma\nsecond line', "neg, x"))
    again = StyleDatabase(path)
    assert again.styles["tricky"] == PromptStyle("tricky", 'a "quoted", comma\nsecond line', "neg, x")
    assert [p.name for p in tmp_path.iterdir()] == ["styles.csv"]  # no temp files left
    again.delete_style("tricky")
    assert StyleDatabase(path).names() == []


def test_reads_an_a1111_file_with_bom(tmp_path):
    path = tmp_path / "styles.csv"
    text = '\ufeffname,prompt,negative_prompt\n"Style A","{prompt}, sharp",blurry\n'
    path.write_text(text, encoding="utf-8")
    assert StyleDatabase(path).styles["Style A"].negative_prompt == "blurry"


def test_extract_styles_reverses_apply(tmp_path):
    db = StyleDatabase(tmp_path / "styles.csv")
    db.save_style(PromptStyle("frame", "a painting of {prompt}, framed", "ugly"))
    db.save_style(PromptStyle("hq", "masterpiece", "lowres"))
    prompt = db.apply_styles_to_prompt("a cat", ["frame", "hq"])
    negative = db.apply_negative_styles_to_prompt("blur", ["frame", "hq"])
    assert db.extract_styles_from_prompt(prompt, negative) == (["frame", "hq"], "a cat", "blur")
    assert db.extract_styles_from_prompt("plain", "") == ([], "plain", "")


def test_strip_comments():
    assert strip_comments("a cat\n# a note\nsitting # aside\n#last") == "a cat\nsitting\n"
    assert strip_comments("no comments here") == "no comments here"


def test_append_strips_both_sides_as_a1111(tmp_path):
    db = StyleDatabase(tmp_path / "styles.csv")
    db.save_style("hq", "  masterpiece ", "")  # the UI adapter's call: name, prompt, negative
    assert db.styles["hq"] == PromptStyle("hq", "  masterpiece ", "")
    assert db.apply_styles_to_prompt(" a cat ", ["hq"]) == "a cat, masterpiece"
    assert db.apply_styles_to_prompt("   ", ["hq"]) == "masterpiece"
    # An empty negative in the style leaves the user's negative (stripped) alone.
    assert db.apply_negative_styles_to_prompt(" blur ", ["hq"]) == "blur"


def test_extract_needs_the_separator_and_tolerates_whitespace(tmp_path):
    db = StyleDatabase(tmp_path / "styles.csv")
    db.save_style(PromptStyle("hq", "hq", ""))
    assert db.extract_styles_from_prompt("not_hq", "") == ([], "not_hq", "")
    assert db.extract_styles_from_prompt("a cat, hq  ", "") == (["hq"], "a cat", "")
    assert db.extract_styles_from_prompt("hq", "") == (["hq"], "", "")


def test_legacy_text_column_and_unreadable_file(tmp_path):
    path = tmp_path / "styles.csv"
    path.write_text("name,text\nold,{prompt} in oil\n", encoding="utf-8")
    assert StyleDatabase(path).apply_styles_to_prompt("a cat", ["old"]) == "a cat in oil"
    path.write_bytes(b"name,prompt\n\xff\xfe broken,\x81\n")
    broken = StyleDatabase(path)
    assert broken.names() == [] and "styles.csv" in broken.load_warning


def test_save_rejects_a_blank_name_and_keeps_the_file(tmp_path):
    path = tmp_path / "styles.csv"
    db = StyleDatabase(path)
    db.save_style("keep", "x", "")
    before = path.read_bytes()
    try:
        db.save_style("  ", "y", "")
    except ValueError as exc:
        assert "name" in str(exc)
    else:
        raise AssertionError("a blank style name was accepted")
    assert path.read_bytes() == before


def test_comment_lines_may_be_indented_and_keep_other_lines():
    assert strip_comments("  # indented note\na (cat:1.2)  # why\n\nb") == "a (cat:1.2)\n\nb"
    assert strip_comments("#only") == ""
