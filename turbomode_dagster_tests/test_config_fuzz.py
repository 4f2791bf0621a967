"""Property-based drill: every mutation of the shipped config that makes it invalid is rejected by
`turbomode config validate` with a field path (or a file-level line/column), exit 1, never a traceback."""

from __future__ import annotations

import contextlib
import io
import json
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from turbomode_dagster.cli import main
from turbomode_dagster.config import MAX_DEPTH
from turbomode_dagster_tests.conftest import shipped_config

Path_ = tuple[str | int, ...]
FUZZ = settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
FLOAT_FIELDS = {"timeout_seconds", "planted_effect", "sell_threshold", "buy_threshold", "min_probability"}
FILE_LEVEL = re.compile(r"^(line \d+ column \d+: |invalid value: |the document nests too deeply)")
QUOTED_KEY = r'\["(?:[^"\\]|\\.)*"\]'
FIELD_LEVEL = re.compile(rf"^(\(top level\)|([A-Za-z_]\w*|{QUOTED_KEY})(\[\d+\]|\.\w+|{QUOTED_KEY})*): ")
NON_FINITE = ["nan", "inf", "-inf"]
# Lone continuation bytes, overlong and truncated sequences, bytes UTF-8 never uses, an encoded surrogate.
NOT_UTF8 = [b"\x80", b"\xbf", b"\xc0", b"\xc1\x81", b"\xe2\x82", b"\xf0\x9f\x98", b"\xf5", b"\xff", b"\xed\xa0\x80"]
SHIPPED = shipped_config()
_SCRATCH = tempfile.TemporaryDirectory(prefix="config_fuzz_")  # removed when the test process exits
WORKDIR = Path(_SCRATCH.name)


def nodes(node: object, path: Path_ = ()) -> Iterator[tuple[Path_, object]]:
    """Every (path, value) of the document, containers included, the root excepted."""
    if path:
        yield path, node
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in children:
        yield from nodes(value, (*path, key))


NODES = list(nodes(SHIPPED))
IN_PARAMS = {p for p, _ in NODES if "params" in p[:-1]}
# universe.symbols[3:] add nothing the first three do not: dropped, so other fields get drawn.
SCALARS = [
    (p, v)
    for p, v in NODES
    if not isinstance(v, dict | list) and p not in IN_PARAMS and not (p[:2] == ("universe", "symbols") and p[2] > 2)
]
INTS = [p for p, v in SCALARS if type(v) is int and p[-1] not in FLOAT_FIELDS]
FLOATS = [p for p, v in SCALARS if p[-1] in FLOAT_FIELDS]
NULLABLE = {p[-1] for p, v in NODES if v is None}
OBJECTS = [()] + [p for p, v in NODES if isinstance(v, dict)]


def location(path: Path_) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).removeprefix(".")


def replaced(path: Path_, value: object) -> dict:
    """A fresh copy of the shipped config with the node at `path` replaced."""
    raw = json.loads(json.dumps(SHIPPED))
    node = raw
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return raw


def json_kind(value: object) -> str:
    return "null" if value is None else type(value).__name__


def assert_rejected(data: bytes, mutated: Path_ | None) -> list[str]:
    """Run `turbomode config validate` on `data`: exit 1, no traceback, every problem located."""
    file = WORKDIR / "fuzzed.json"
    file.write_bytes(data)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["config", "validate", str(file)])
    assert "Traceback" not in out.getvalue() + err.getvalue()
    assert code == 1, out.getvalue()
    header, *lines = out.getvalue().splitlines()
    assert header == f"{file}: INVALID, {len(lines)} problem(s):"
    problems = [line.removeprefix("  - ") for line in lines]
    assert problems and all(line.startswith("  - ") for line in lines)
    for problem in problems:
        assert FILE_LEVEL.match(problem) or FIELD_LEVEL.match(problem), problem
    if mutated is not None:
        where = location(mutated)
        paths = [m.group(1) for p in problems if (m := FIELD_LEVEL.match(p))]
        assert any(where.startswith(p) or p.startswith(where) for p in paths), (where, problems)
    return problems


def encoded(raw: object) -> bytes:
    return json.dumps(raw, indent=2).encode()


# Values a lax parser would coerce into another type, changing what the config means.
COERCIBLE = st.sampled_from([True, False, 1, 0, 2.0, "1", "0.5", "true", "2016-01-04", 1451865600])
ANY_JSON = COERCIBLE | st.recursive(
    st.none() | st.booleans() | st.integers(-(10**6), 10**6) | st.floats(-1e6, 1e6) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)


@FUZZ
@given(st.sampled_from(SCALARS), ANY_JSON)
def test_a_value_of_the_wrong_type_is_rejected_at_its_path(leaf: tuple[Path_, object], value: object) -> None:
    path, old = leaf
    allowed = {json_kind(old)} | ({"int", "float"} if path[-1] in FLOAT_FIELDS or isinstance(old, float) else set())
    if old is None:
        allowed |= {"int", "float"}  # the shipped nulls are optional numbers (max_rows, backtest overrides)
    if path[-1] in NULLABLE:
        allowed |= {"null"}  # a field shipped as null somewhere (a learner's max_rows) takes null everywhere
    if json_kind(value) in allowed:
        value = [value]  # keep the type wrong: a list fits no scalar field
    assert_rejected(encoded(replaced(path, value)), path)


@FUZZ
@given(
    st.sampled_from([p for p, v in NODES if isinstance(v, dict | list)]),
    st.integers(-(10**9), 10**9) | st.text() | st.booleans(),
)
def test_a_scalar_where_a_section_or_list_belongs_is_rejected(path: Path_, value: object) -> None:
    assert_rejected(encoded(replaced(path, value)), path)


@FUZZ
@given(
    st.one_of(
        st.tuples(st.sampled_from(INTS), st.integers(-(10**90), -1) | st.integers(10**10, 10**90)),
        st.tuples(st.sampled_from(FLOATS), st.floats(601, 1e308) | st.floats(-1e308, -1.000001)),
    )
)
def test_an_out_of_range_number_is_rejected_at_its_path(case: tuple[Path_, float]) -> None:
    path, value = case
    assert_rejected(encoded(replaced(path, value)), path)


@FUZZ
@given(st.sampled_from([p for p, v in NODES if not isinstance(v, dict | list)]), st.sampled_from(NON_FINITE))
def test_a_non_finite_number_anywhere_is_rejected(path: Path_, literal: str) -> None:
    data = json.dumps(replaced(path, float(literal)), indent=2).encode()
    (problem,) = assert_rejected(data, None)
    assert problem.startswith("invalid value:") and "is not a number a config may hold" in problem


@FUZZ
@given(st.sampled_from(OBJECTS), st.from_regex(r"zz_[a-z0-9_]{0,12}", fullmatch=True))
def test_an_unknown_key_is_rejected_at_its_path(path: Path_, key: str) -> None:
    raw = json.loads(json.dumps(SHIPPED))
    node = raw
    for part in path:
        node = node[part]
    node[key] = 1
    assert_rejected(encoded(raw), (*path, key))


@FUZZ
@given(
    st.integers(0, len(encoded(SHIPPED))),
    st.sampled_from(NOT_UTF8),
)
def test_a_byte_that_is_not_utf8_is_rejected_with_its_line(offset: int, bad: bytes) -> None:
    data = encoded(SHIPPED)
    (problem,) = assert_rejected(data[:offset] + bad + data[offset:], None)
    line = data[:offset].count(b"\n") + 1
    assert problem.startswith(f"line {line} column ") and "not valid UTF-8" in problem


@FUZZ
@given(st.sampled_from([p for p, v in SCALARS if isinstance(v, str)]), st.integers(0xD800, 0xDFFF), st.text(max_size=4))
def test_text_with_an_unpaired_surrogate_is_rejected_at_its_path(path: Path_, code: int, around: str) -> None:
    raw = replaced(path, around + chr(code) + around)
    assert_rejected(json.dumps(raw).encode(), path)


@FUZZ
@given(st.sampled_from([p for p, _ in NODES]), st.integers(MAX_DEPTH + 1, 3000), st.booleans())
def test_absurd_nesting_is_rejected(path: Path_, depth: int, as_objects: bool) -> None:
    opening, closing = ('{"a":', "}") if as_objects else ("[", "]")
    text = json.dumps(replaced(path, "@NEST@")).replace('"@NEST@"', opening * depth + "1" + closing * depth)
    (problem,) = assert_rejected(text.encode(), path if depth < 500 else None)
    assert "nests" in problem


@pytest.mark.parametrize("cut", [0, 1, 100, 5000])
def test_a_truncated_file_is_rejected_with_its_line(cut: int) -> None:
    (problem,) = assert_rejected(encoded(SHIPPED)[:cut], None)
    assert problem.startswith("line ") and "invalid JSON" in problem


def assert_accepted_or_rejected(data: bytes) -> None:
    """Some edits leave a valid config: then exit 0; otherwise the same checks as `assert_rejected`."""
    file = WORKDIR / "edited.json"
    file.write_bytes(data)
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = main(["config", "validate", str(file)])
    if code != 0:
        assert_rejected(data, None)


@FUZZ
@given(st.sampled_from(sorted(IN_PARAMS, key=str)), ANY_JSON)
def test_any_learner_param_value_is_accepted_or_rejected_never_raised(path: Path_, value: object) -> None:
    assert_accepted_or_rejected(encoded(replaced(path, value)))


@FUZZ
@given(st.data())
def test_any_byte_edit_is_accepted_or_rejected_never_raised(data: st.DataObject) -> None:
    text = bytearray(encoded(SHIPPED))
    for _ in range(data.draw(st.integers(1, 4))):
        offset = data.draw(st.integers(0, len(text) - 1))
        text[offset : offset + data.draw(st.integers(0, 3))] = data.draw(st.binary(min_size=0, max_size=3))
    assert_accepted_or_rejected(bytes(text))


def test_nesting_far_beyond_the_decoder_is_refused_by_line_before_decoding(monkeypatch) -> None:
    """A document nested deeper than DECODE_DEPTH never reaches json.loads (so never its recursion limit)."""
    from turbomode_dagster import config

    def no_decode(*args, **kwargs):
        raise AssertionError("json.loads was called on a document nested beyond DECODE_DEPTH")

    monkeypatch.setattr(config.json, "loads", no_decode)
    text = '{"version": "1.0", "x": ' + "[" * 100_000 + "]" * 100_000 + "}"
    (problem,) = assert_rejected(text.encode(), None)
    assert problem.startswith(
        "line 1 column 624: "
    )  # the bracket that opens level 601 and "nests deeper than 600 levels" in problem


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    from turbomode_dagster.config import DECODE_DEPTH, _first_offset_nested_beyond

    quoted = json.dumps("[" * (DECODE_DEPTH + 5) + '\\"{')
    assert _first_offset_nested_beyond("[" + quoted + "]", DECODE_DEPTH) is None
    assert _first_offset_nested_beyond("[" * (DECODE_DEPTH + 1), DECODE_DEPTH) == DECODE_DEPTH
