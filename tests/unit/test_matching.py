import pytest

from gradual.matching import answer_line, is_correct, normalize


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Zürich", "zurich"),
        ("  São   Paulo\t", "sao paulo"),
        ("ＦＵＬＬ width", "full width"),  # NFKC folds full-width letters
        ("Straße", "strasse"),  # case-fold, not lower()
        ("Ångström", "angstrom"),
        ("ﬁnal", "final"),  # ligature
    ],
)
def test_normalize(text, expected):
    assert normalize(text) == expected


def test_answer_line_is_the_first_line_stripped():
    assert answer_line(" Paris\nQ: What is") == "Paris"
    assert answer_line("\nParis") == ""


@pytest.mark.parametrize(
    ("generated", "golds", "mode", "expected"),
    [
        (" The capital is Paris.", ["Paris"], "substring", True),
        (" paris", ["Paris"], "substring", True),
        (" Zurich, Switzerland", ["Zürich"], "substring", True),
        (" Lyon\nParis", ["Paris"], "substring", False),  # only the answer line counts
        (" Pari", ["Paris"], "substring", False),
        (" France", ["Paris", "France"], "substring", True),  # any gold answer
        (" Paris", ["Paris"], "exact", True),
        (" Paris, France", ["Paris"], "exact", False),
        (" Sao  Paulo ", ["São Paulo"], "exact", True),
        (" Paulo was born in Sao", ["São Paulo"], "tokens", True),
        (" Paulo", ["São Paulo"], "tokens", False),
        (" anything", [" ", ""], "substring", False),  # an empty gold answer never matches
    ],
)
def test_is_correct(generated, golds, mode, expected):
    assert is_correct(generated, golds, mode) is expected


def test_unknown_mode_is_an_error():
    with pytest.raises(ValueError, match="unknown matching mode"):
        is_correct("Paris", ["Paris"], "fuzzy")
