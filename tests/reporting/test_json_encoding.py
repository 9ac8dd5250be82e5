"""The JSON report's text: indented head, one result per line, and always the same document."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from pytest_autoglm.reporting.json_report import encode_json

_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
_values = st.recursive(
    _scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3), max_leaves=8
)
_documents = st.dictionaries(st.text().filter(lambda k: k != "results"), _values, max_size=4).flatmap(
    lambda head: st.one_of(
        st.just(head),
        st.lists(st.dictionaries(st.text(), _values, max_size=4), max_size=4).map(
            lambda rows: {**head, "results": rows}
        ),
    )
)


@given(_documents)
def test_the_text_decodes_to_the_same_document(document):
    assert json.loads(encode_json(document)) == document


def test_each_result_is_one_line():
    text = encode_json({"schema": "x", "results": [{"id": "a", "details": {"k": [1, 2]}}, {"id": "b"}]})
    lines = text.splitlines()
    assert '    {"id": "a", "details": {"k": [1, 2]}},' in lines
    assert '    {"id": "b"}' in lines
    assert lines[1] == '  "schema": "x",'
