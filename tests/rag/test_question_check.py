"""The Python API refuses a question it cannot search with a QueryError that says why, the same
refusal the CLI and the server give (a lone surrogate reached the tokenizer as a TypeError)."""

import pytest

from rag.errors import QueryError
from rag.kb import check_question


@pytest.mark.parametrize(
    ("question", "said"),
    [
        ("\ud800 what is this", "lone surrogate"),
        ("why\x00", "NUL"),
        ("   ", "empty"),
        (b"bytes", "must be text"),
        ("x" * 2001, "limit is 2000"),
    ],
)
def test_a_question_that_cannot_be_searched_is_refused_with_its_reason(question, said):
    with pytest.raises(QueryError, match=said):
        check_question(question, 2000)


def test_a_plain_question_comes_back_stripped():
    assert check_question("  Wie heißt der Parameter?  ", 2000) == "Wie heißt der Parameter?"
