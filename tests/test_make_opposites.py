"""rag_eval/make_opposites.py on a tiny WordNet folder in WordNet's own file format."""

from __future__ import annotations

import pytest

from rag_eval import make_opposites

LICENCE = "  1 This software and database is being provided to you, the LICENSEE, by  \n  2 Princeton University.  \n"


def wordnet(tmp_path):
    files = {
        "data.adj": [
            "00000001 00 a 01 open 0 001 ! 00000002 a 0101 | affording entry",
            "00000002 00 a 01 closed 0 001 ! 00000001 a 0101 | not open",
            "00000003 00 a 02 all 0 whole 0 001 ! 00000004 a 0101 | a stop word's pair",
            "00000004 00 a 01 some 0 001 ! 00000003 a 0101 | x",
        ],
        "data.verb": [
            "00000001 00 v 01 buy 0 001 ! 00000002 v 0101 01 + 08 00 | a converse",
            "00000002 00 v 01 sell 0 001 ! 00000001 v 0101 01 + 08 00 | x",
            "00000003 00 v 01 rise 0 001 ! 00000004 v 0101 01 + 01 00 | x",
            "00000004 00 v 01 fall 0 001 ! 00000003 v 0101 01 + 01 00 | x",
        ],
        "data.noun": ["00000001 00 n 01 give_way 0 000 | a phrase, no pointer"],
        "data.adv": [],
        "verb.exc": ["rose rise", "fell fall", "sold sell"],
    }
    for name, lines in files.items():
        body = "\n".join(lines) + "\n"
        (tmp_path / name).write_text(LICENCE + body if name.startswith("data.") else body)
    return tmp_path


def test_antonyms_keep_single_words_and_leave_out_stop_words_and_converses(tmp_path):
    folder = wordnet(tmp_path)
    assert make_opposites.antonyms(folder) == [("adj", "closed", "open"), ("verb", "fall", "rise")]


def test_the_written_file_names_its_origin_and_licence_and_the_irregular_forms_of_kept_words(tmp_path):
    folder = wordnet(tmp_path)
    out = tmp_path / "opposites.tsv"
    assert make_opposites.main([str(folder), "--out", str(out)]) == 0
    text = out.read_text()
    assert text.startswith("# Opposites for the opposites check") and "WordNet licence:" in text
    assert "#   Princeton University." in text
    rows = [line.split("\t") for line in text.splitlines() if not line.startswith("#")]
    assert ["antonym", "adj", "closed", "open"] in rows
    assert ["form", "verb", "rose", "rise"] in rows and ["form", "verb", "fell", "fall"] in rows
    assert not any("sold" in row for row in rows)  # "sell" is a converse, so not kept


def test_a_folder_without_wordnet_data_is_refused_by_name(tmp_path, capsys):
    with pytest.raises(SystemExit):
        make_opposites.main([str(tmp_path)])
    assert "not a WordNet dictionary folder" in capsys.readouterr().err
