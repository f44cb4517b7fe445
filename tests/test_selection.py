"""Safe selection compiler: semantics against hand-written numpy, hostile input, fuzzing."""

from __future__ import annotations

import pickle
import re
import warnings
from collections.abc import Callable
from typing import Any

import awkward as ak
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from taucoffea.columns.selection import (
    DEFAULT_FUNCTIONS,
    MAX_LENGTH,
    MAX_LIST_ITEMS,
    CompiledExpression,
    Selection,
    SelectionFunction,
    compile_expression,
    compile_selection,
)
from taucoffea.errors import ConfigError, InputError, SelectionError
from taucoffea.physics import delta_phi

N = 400


def _make_table() -> dict[str, np.ndarray]:
    rng = np.random.Generator(np.random.Philox(20240601))
    return {
        "tau_pt": rng.uniform(0, 150, N).astype(np.float32),
        "tau_eta": rng.uniform(-3, 3, N).astype(np.float32),
        "tau_phi": rng.uniform(-np.pi, np.pi, N).astype(np.float32),
        "tau_dz": rng.normal(0, 0.3, N).astype(np.float32),
        "tau_dxy": rng.normal(0, 0.05, N).astype(np.float32),
        "tau_dxy_error": rng.uniform(0, 0.02, N).astype(np.float32),
        "tau_decayMode": rng.choice([0, 1, 2, 5, 6, 10, 11], N).astype(np.int32),
        "tau_index": rng.integers(-1, 3, N).astype(np.int32),
        "tau_charge": rng.choice([-1, 1], N).astype(np.int32),
        "tau_byDeepTau2017v2p1VSjetraw": rng.uniform(0, 1, N).astype(np.float32),
        "tau_byDeepTau2017v2p1VSjet": rng.integers(0, 256, N).astype(np.uint16),
        "flag": rng.integers(0, 2, N).astype(np.int32),
        "isGood": rng.integers(0, 2, N).astype(bool),
        "evt": rng.integers(0, 2**40, N).astype(np.uint64),
    }


T = _make_table()
COLUMNS = tuple(T)
# a float32 column holding exactly float32(0.9), for literal-typing checks
T["tau_pt"][:3] = np.float32(0.9)


def _tables() -> list[Any]:
    return [T, ak.Array(T), pd.DataFrame(T)]


def _as_numpy(mask: Any) -> np.ndarray:
    return ak.to_numpy(mask) if isinstance(mask, ak.Array) else np.asarray(mask)


ABS = np.abs
t = T  # shorthand in the reference lambdas

EQUIVALENT: list[tuple[str, Callable[[], np.ndarray]]] = [
    # the brief's examples
    ("tau_pt>30 && std::abs(tau_eta)<2.3 && (tau_decayMode==0 || tau_decayMode==10)",
     lambda: (t["tau_pt"] > 30) & (ABS(t["tau_eta"]) < 2.3)
     & ((t["tau_decayMode"] == 0) | (t["tau_decayMode"] == 10))),
    ("!flag", lambda: t["flag"] == 0),
    ("(tau_pt > 20) && !(abs(tau_dz) >= 0.2)",
     lambda: (t["tau_pt"] > 20) & ~(ABS(t["tau_dz"]) >= 0.2)),
    ("tau_byDeepTau2017v2p1VSjetraw > 0.9 && tau_index >= 0",
     lambda: (t["tau_byDeepTau2017v2p1VSjetraw"].astype(np.float64) > 0.9)
     & (t["tau_index"] >= 0)),
    # more: pandas-style strings from the TauMLTools evaluation configs
    ("(tau_decayMode != 5) & (tau_decayMode != 6) and (abs(tau_dz) < 0.2)",
     lambda: (t["tau_decayMode"] != 5) & (t["tau_decayMode"] != 6) & (ABS(t["tau_dz"]) < 0.2)),
    ("(tau_pt>=30) and (tau_pt<80) and (abs(tau_eta)<2.3) and not (tau_decayMode == 5)",
     lambda: (t["tau_pt"] >= 30) & (t["tau_pt"] < 80) & (ABS(t["tau_eta"]) < 2.3)
     & (t["tau_decayMode"] != 5)),
    # chained comparisons mean what they mean in maths
    ("20 <= tau_pt < 80", lambda: (t["tau_pt"] >= 20) & (t["tau_pt"] < 80)),
    ("-2.3 < tau_eta <= 2.3 < 5", lambda: (t["tau_eta"] > -2.3) & (t["tau_eta"] <= 2.3)),
    # arithmetic, precedence, true division, unary minus
    ("tau_pt * 2 + 10 > 3 * tau_pt - 40",
     lambda: t["tau_pt"] * 2 + 10 > 3 * t["tau_pt"] - 40),
    ("-tau_eta > 1", lambda: -t["tau_eta"] > 1),
    ("tau_decayMode / 4 > 2", lambda: t["tau_decayMode"] / 4 > 2),  # 10/4 = 2.5 is in
    ("tau_decayMode // 5 + 1 == 3", lambda: t["tau_decayMode"] >= 10),
    ("tau_charge * tau_decayMode % 5 == -1",
     lambda: np.fmod(t["tau_charge"] * t["tau_decayMode"], 5) == -1),  # C: sign of dividend
    ("abs(tau_dxy/tau_dxy_error) > 3", lambda: ABS(t["tau_dxy"] / t["tau_dxy_error"]) > 3),
    # ROOT spellings of functions
    ("fabs(tau_eta) < 1 || std::fabs(tau_eta) > 2 || TMath::Abs(tau_eta) == 1.5",
     lambda: (ABS(t["tau_eta"]) < 1) | (ABS(t["tau_eta"]) > 2)),
    ("std::min(tau_pt, 50.) + max(tau_pt, 20) > 70",
     lambda: np.minimum(t["tau_pt"].astype(np.float64), 50.0) + np.maximum(t["tau_pt"], 20)
     > 70),
    ("sqrt(tau_eta**2 + tau_phi**2) < 1.5 && pow(tau_pt, 0.5) > 5",
     lambda: (np.sqrt(t["tau_eta"].astype(float) ** 2 + t["tau_phi"].astype(float) ** 2)
              < 1.5) & (np.sqrt(t["tau_pt"].astype(float)) > 5)),
    ("exp(-tau_pt/50) > 0.5 && log(tau_pt) < 4",
     lambda: (np.exp(-t["tau_pt"] / 50) > 0.5) & (np.log(t["tau_pt"]) < 4)),
    # C++ `!` binds tighter than `==`; Python `not` keeps its own precedence
    ("!flag == 0", lambda: t["flag"] != 0),
    ("!tau_decayMode > 0", lambda: t["tau_decayMode"] == 0),
    ("not tau_decayMode > 0", lambda: t["tau_decayMode"] <= 0),
    ("!!flag", lambda: t["flag"] != 0),
    # && binds tighter than ||, & and | bind like && and || (pandas / C++ on booleans)
    ("tau_pt > 100 || tau_pt < 10 && flag", lambda: (t["tau_pt"] > 100)
     | ((t["tau_pt"] < 10) & (t["flag"] != 0))),
    ("tau_pt > 100 | tau_pt < 10 & isGood", lambda: (t["tau_pt"] > 100)
     | ((t["tau_pt"] < 10) & t["isGood"])),
    ("(tau_pt > 100 | isGood) && flag", lambda: ((t["tau_pt"] > 100) | t["isGood"])
     & (t["flag"] != 0)),
    # booleans count as integers in arithmetic (C++ promotion)
    ("(tau_pt > 20) + (abs(tau_eta) < 2) + isGood >= 2",
     lambda: (t["tau_pt"] > 20).astype(int) + (ABS(t["tau_eta"]) < 2) + t["isGood"] >= 2),
    ("-(tau_pt > 20) == -1", lambda: t["tau_pt"] > 20),
    # literals: double by default (compared in double, like ROOT), float with an f suffix
    ("tau_pt >= 0.9", lambda: t["tau_pt"].astype(np.float64) >= 0.9),
    ("tau_pt >= 0.9f", lambda: t["tau_pt"] >= np.float32(0.9)),
    ("tau_pt > 1e1 && tau_pt < 1.2E2 && tau_pt != .5e-3", lambda: (t["tau_pt"] > 10)
     & (t["tau_pt"] < 120)),
    ("true", lambda: np.ones(N, bool)),
    ("false || !true", lambda: np.zeros(N, bool)),
    ("True && tau_pt > 50", lambda: t["tau_pt"] > 50),
    ("flag", lambda: t["flag"] != 0),
    ("tau_pt", lambda: t["tau_pt"] != 0),
    ("isGood && isfinite(tau_pt / (tau_decayMode - 1))",
     lambda: t["isGood"] & (t["tau_decayMode"] != 1)),
    # WP bitmask bit tests
    ("testbit(tau_byDeepTau2017v2p1VSjet, 4) && !TESTBIT(tau_byDeepTau2017v2p1VSjet, 5)",
     lambda: ((t["tau_byDeepTau2017v2p1VSjet"] >> 4) & 1 == 1)
     & ((t["tau_byDeepTau2017v2p1VSjet"] >> 5) & 1 == 0)),
    ("evt % 2 == 0", lambda: t["evt"] % 2 == 0),
    ("evt > 3000000000", lambda: t["evt"] > 3_000_000_000),
    # list membership (pandas style), elementwise like np.isin
    ("tau_decayMode in [5, 6]", lambda: np.isin(t["tau_decayMode"], [5, 6])),
    ("tau_decayMode not in [5, 6] && abs(tau_dz) < 0.2",
     lambda: ~np.isin(t["tau_decayMode"], [5, 6]) & (ABS(t["tau_dz"]) < 0.2)),
    ("tau_charge in [-1] || tau_index not in (0, 1,)",
     lambda: (t["tau_charge"] == -1) | ~np.isin(t["tau_index"], [0, 1])),
    ("not tau_decayMode in [0, 1, 10, 11] and isGood",
     lambda: ~np.isin(t["tau_decayMode"], [0, 1, 10, 11]) & t["isGood"]),
    ("!(tau_decayMode in [0]) & isGood | tau_decayMode in [10, 10, 10.0]",
     lambda: (t["tau_decayMode"] != 0) & t["isGood"] | (t["tau_decayMode"] == 10)),
    ("(tau_decayMode in [10, 11]) + (tau_charge in [1]) >= 1",
     lambda: np.isin(t["tau_decayMode"], [10, 11]) | (t["tau_charge"] == 1)),
    # the list items are typed like '==' operands: 0.9 is a double, 0.9f a float
    ("tau_pt in [0.9f, 1e9] && !(tau_pt in [0.9])", lambda: t["tau_pt"] == np.float32(0.9)),
    ("evt not in [-1, 3000000000] && evt % 2 == 0", lambda: t["evt"] % 2 == 0),
    ("abs(tau_charge * tau_decayMode) in [\n  1, 2,\n  -5, +10]",
     lambda: np.isin(ABS(t["tau_charge"] * t["tau_decayMode"]), [1, 2, 10])),
    # whitespace and newlines from YAML block scalars
    ("tau_pt>30&&\n   abs(tau_eta)<2.3\t", lambda: (t["tau_pt"] > 30) & (ABS(t["tau_eta"]) < 2.3)),
]


@pytest.mark.parametrize(("expression", "reference"), EQUIVALENT, ids=[e for e, _ in EQUIVALENT])
def test_selection_matches_numpy(expression: str, reference: Callable[[], np.ndarray]) -> None:
    with np.errstate(all="ignore"):
        expected = np.broadcast_to(np.asarray(reference()), (N,))
    assert expected.any() or expression in ("false || !true",), "test case selects nothing"
    selection = compile_selection(expression, columns=COLUMNS)
    for table in _tables():
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # division by zero etc. stays silent
            mask = selection(table)
        got = _as_numpy(mask)
        assert got.dtype == np.bool_ and got.shape == (N,)
        np.testing.assert_array_equal(got, expected)


def test_selection_columns_and_repr() -> None:
    sel = compile_selection("tau_pt > 30 && std::abs(tau_eta) < 2.3 && tau_pt < 1e3")
    assert sel.columns == frozenset({"tau_pt", "tau_eta"})
    assert sel.expression == "tau_pt > 30 && std::abs(tau_eta) < 2.3 && tau_pt < 1e3"
    assert isinstance(sel, Selection) and "tau_pt > 30" in repr(sel)


def test_selection_on_jagged_awkward() -> None:
    events = ak.Array({
        "tau_pt": [30.0, 50.0, 70.0],
        "pfCand_particleType": [[1, 2, 2], [], [4]],
        "pfCand_pt": [[1.0, 5.0, 20.0], [], [3.0]],
    })
    mask = compile_selection("pfCand_particleType == 2 && pfCand_pt / tau_pt > 0.2")(events)
    assert mask.tolist() == [[False, False, True], [], [False]]
    rel = compile_expression("pfCand_pt / tau_pt")(events)
    assert ak.all(rel == events.pfCand_pt / events.tau_pt)


def test_membership_on_jagged_awkward() -> None:
    events = ak.Array({
        "tau_pt": [30.0, 50.0, 70.0],
        "pfCand_particleType": [[1, 2, 2], [], [4, 3]],
        "pfCand_pt": [[1.0, 5.0, 20.0], [], [3.0, 9.0]],
    })
    flat = ak.flatten(events.pfCand_particleType).to_numpy()
    counts = ak.num(events.pfCand_particleType)
    for expression, expected_flat in [
        ("pfCand_particleType in [1, 4]", np.isin(flat, [1, 4])),
        ("pfCand_particleType not in [1, 4]", ~np.isin(flat, [1, 4])),
        ("pfCand_particleType in [2] && pfCand_pt / tau_pt > 0.2",
         np.array([False, False, True, False, False])),
        ("tau_pt in [50., 70.] || pfCand_particleType in (1,)",
         np.array([True, False, False, True, True])),
    ]:
        mask = compile_selection(expression)(events)
        assert isinstance(mask, ak.Array), expression
        assert mask.tolist() == ak.unflatten(expected_flat, counts).tolist(), expression
    # a flat awkward column
    flat_events = ak.Array({"tau_decayMode": [0, 1, 5, 6, 10]})
    assert compile_selection("tau_decayMode not in [5, 6]")(flat_events).tolist() == \
        [True, True, False, False, True]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values=st.lists(st.integers(-8, 8), min_size=1, max_size=MAX_LIST_ITEMS),
       negate=st.booleans(), as_tuple=st.booleans())
def test_membership_matches_np_isin(values: list[int], negate: bool, as_tuple: bool) -> None:
    items = ", ".join(map(str, values))
    text = f"i {'not in' if negate else 'in'} {f'({items})' if as_tuple else f'[{items}]'}"
    sel = compile_selection(text, columns=tuple(FUZZ_TABLE))
    expected = np.isin(FUZZ_TABLE["i"], values, invert=negate)
    np.testing.assert_array_equal(sel(FUZZ_TABLE), expected)
    np.testing.assert_array_equal(_as_numpy(sel(ak.Array(FUZZ_TABLE))), expected)
    jagged = ak.unflatten(FUZZ_TABLE["i"], [10, 0, 30, 24])
    got = sel({"i": jagged})
    assert ak.all(ak.num(got) == ak.num(jagged))
    np.testing.assert_array_equal(ak.flatten(got).to_numpy(), expected)


def test_membership_pickles_and_reports_columns() -> None:
    sel = compile_selection("tau_decayMode not in [5, 6] && tau_pt > 20", columns=COLUMNS)
    assert sel.columns == frozenset({"tau_decayMode", "tau_pt"})
    clone = pickle.loads(pickle.dumps(sel))
    np.testing.assert_array_equal(clone(T), sel(T))
    values = compile_expression("tau_decayMode in [0, 1]")(T)
    np.testing.assert_array_equal(values, np.isin(T["tau_decayMode"], [0, 1]))


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("tau_pt in tau_eta", "'in' must be followed by a literal list of numbers"),
        ("tau_pt in 5", "found '5'"),
        ("tau_pt in", "expression ends after 'in'"),
        ("tau_pt not in abs(tau_eta)", "'not in' must be followed by a literal list"),
        ("tau_pt in [tau_eta]", "may only hold number literals"),
        ("tau_pt in [abs(1)]", "found 'abs'"),
        ("tau_pt in [true]", "found 'true'"),
        ("tau_pt in [[1, 2]]", "nested lists are not allowed"),
        ("tau_pt in [(1)]", "nested lists are not allowed"),
        ("tau_pt in ['a']", "string literal 'a' is not allowed"),
        ("tau_pt in []", "empty list after 'in'"),
        ("tau_pt not in ( )", "empty list after 'not in'"),
        ("tau_pt in [1, 2", "never closed"),
        ("tau_pt in [1 2]", "expected ',' or ']'"),
        ("tau_pt in [1,,2]", "',' where a number belongs"),
        ("tau_pt in [-]", "']' where a number belongs"),
        ("tau_pt in [\u00b2]", "found '\u00b2'"),  # a digit, but not an ASCII one
        ("tau_pt in [" + ", ".join(["1"] * (MAX_LIST_ITEMS + 1)) + "]",
         f"more than {MAX_LIST_ITEMS} items"),
        ("tau_pt in [1] in [2]", "cannot be chained with 'in'"),
        ("tau_pt in [1] == flag", "cannot be chained with '=='"),
        ("tau_pt < tau_eta in [1]", "cannot be chained with other comparisons"),
        ("tau_pt in [1] * 2", "'\\*' cannot follow the list"),
        ("in [1]", "expected a value but found 'in'"),
        ("flag and not in [1]", "found 'not in'"),
        ("[1, 2] == tau_pt", "a list of numbers may only follow 'in'"),
    ],
)
def test_bad_membership_forms(expression: str, message: str) -> None:
    with pytest.raises(SelectionError, match=message) as err:
        compile_selection(expression, columns=COLUMNS)
    assert re.search(r"at column \d+", str(err.value))
    assert "^" in str(err.value).split("\n")[-1]


def test_compile_expression_values_and_broadcast() -> None:
    expr = compile_expression("tau_dxy/tau_dxy_error", columns=COLUMNS)
    assert isinstance(expr, CompiledExpression) and not isinstance(expr, Selection)
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(expr(T), T["tau_dxy"] / T["tau_dxy_error"])
    prongs = compile_expression("tau_decayMode//5 + 1")(pd.DataFrame(T))
    np.testing.assert_array_equal(prongs, T["tau_decayMode"] // 5 + 1)
    const = compile_expression("2 * 3.5")(T)
    assert const.shape == (N,) and np.all(const == 7.0)
    assert compile_selection("1 > 2")(ak.Array(T)).tolist() == [False] * N


def test_custom_functions_and_pickle() -> None:
    funcs = {**DEFAULT_FUNCTIONS, "dphi": SelectionFunction(delta_phi, 2)}
    sel = compile_selection("abs(dphi(tau_phi, 3)) < 1", functions=funcs)
    expected = np.abs(delta_phi(T["tau_phi"], 3.0)) < 1
    np.testing.assert_array_equal(sel(T), expected)
    for obj in (sel, compile_selection("tau_pt > 30", columns=COLUMNS),
                compile_expression("tau_pt * 2")):
        clone = pickle.loads(pickle.dumps(obj))
        assert type(clone) is type(obj) and clone.expression == obj.expression
        np.testing.assert_array_equal(clone(T), obj(T))
    with pytest.raises(SelectionError, match="'dphi'"):
        compile_selection("dphi(tau_phi, 3) < 1")  # not a default function
    with pytest.raises(ConfigError, match="__x"):
        compile_selection("1", functions={"__x": SelectionFunction(np.abs, 1)})


def test_missing_column_at_evaluation_is_input_error() -> None:
    sel = compile_selection("tau_pt > 30 && tau_mass < 2")
    for table in _tables():
        with pytest.raises(InputError, match="tau_mass"):
            sel(table)


def test_runtime_bitwise_on_numbers_is_rejected() -> None:
    sel = compile_selection("flag & isGood")
    with pytest.raises(SelectionError, match="not boolean"):
        sel(T)
    assert compile_selection("isGood & isGood")(T).tolist() == T["isGood"].tolist()


# ------------------------------------------------------------------------------------------
# hostile and malformed input

HOSTILE: list[tuple[str, str]] = [
    # (expression, a piece of the offending token that the message must quote)
    ("__import__('os')", "__import__"),
    ("().__class__", "."),
    ("open('/etc/passwd')", "open"),
    ("lambda: 1", "lambda"),
    ("(x := 1)", ":="),
    ("[i for i in x]", "["),
    ("tau_pt.__class__", "."),
    ("getattr(tau_pt, 'x')", "getattr"),
    ("tau_pt[0]", "["),
    ('"a" == "a"', '"a"'),
    ('f"{tau_pt}"', 'f"{tau_pt}"'),
    ("tau_pt if 1 else 0", "if"),
    ("exec('1')", "exec"),
    ("eval('1')", "eval"),
    ("__builtins__", "__builtins__"),
    ("tau_pt; 1", ";"),
    ("import os", "import"),
    ("*tau_pt", "*"),
    ("abs(x=tau_pt)", "="),
    ("abs(*tau_pt)", "*"),
    ("abs(**tau_pt)", "**"),
    ("tau_pt is None", "is"),
    ("tau_pt in tau_eta", "tau_eta"),
    ("tau_pt not in 5", "5"),
    ("tau_pt in", "in"),
    ("tau_pt in [tau_eta]", "tau_eta"),
    ("tau_pt in [-tau_eta]", "tau_eta"),
    ("tau_pt in [abs(1)]", "abs"),
    ("tau_pt in [__import__('os')]", "__import__"),
    ("tau_pt in [().__class__]", "("),
    ("tau_pt in [[1]]", "["),
    ("tau_pt in ['a', 'b']", "'a'"),
    ("tau_pt in []", "[]"),
    ("tau_pt in [1 for x in tau_eta]", "for"),
    ("tau_pt in [x for x in tau_eta]", "x"),
    ("tau_pt in [1e999]", "1e999"),
    ("tau_pt in {1, 2}", "{"),
    ("tau_pt in [1]]", "]"),
    ("tau_pt in [1] in [2]", "in"),
    ("tau_pt in [1] + 1", "+"),
    ("tau_pt in [" + ", ".join(["7"] * 65) + "]", "7"),
    ("[1, 2]", "["),
    ("{1: 2}", "{"),
    ("{1}", "{"),
    ("9**9**9", "9**9"),
    ("tau_pt ** 100", "100"),
    ("pow(tau_pt, tau_eta)", "tau_eta"),
    ("globals()", "globals"),
    ("tau_pt.real", "."),
    ("(tau_pt, tau_eta)", ","),
    ("abs(tau_pt, tau_eta)", "abs"),
    ("abs", "abs"),
    ("std::system(1)", "std::system"),
    ("tau_pt > 1 ? 1 : 0", "?"),
    ("~flag", "~"),
    ("flag ^ 1", "^"),
    ("flag << 2", "<<"),
    ("flag & 2", "2"),
    ("tau_pt > 1 | tau_pt < 0 && flag", "&&"),
    ("tau_pt = 3", "="),
    ("tau_pt >", ">"),
    ("(tau_pt > 3", "("),
    ("tau_pt > 3)", ")"),
    ("tau_pt tau_eta", "tau_eta"),
    ("tau_pt == not flag", "not"),
    ("1e999 > tau_pt", "1e999"),
    ("99999999999999999999 > tau_pt", "99999999999999999999"),
    ("010 > tau_pt", "010"),
    ("1.__class__", "1.__class__"),
    ("0x10 > tau_pt", "0x10"),
    ("tau_pt > None", "None"),
    ("yield tau_pt", "yield"),
    ("await tau_pt", "await"),
    ("tau_pt @ tau_pt", "@"),
    ("tau_pt > 1 # comment", "#"),
    ("tau_pt\\\n> 1", "\\"),
    ("tau_ptt > 30", "tau_ptt"),
    ("tau_pt > 30 && tua_eta < 2", "tua_eta"),
    ("tau_pt\x00", "\\x00"),
    ("tau_pt > 1 \u2227 flag", "\u2227"),
    ("", ""),
    ("   ", ""),
    ("()", ")"),
    ("testbit(flag, 64)", "64"),
    ("testbit(flag, 1.5)", "1.5"),
]


def _caret_span(message: str) -> str:
    """The text of the quoted expression line that the caret line underlines."""
    lines = message.split("\n")
    caret_line = lines[-1]
    quoted = lines[-2]
    start = caret_line.index("^")
    end = len(caret_line.rstrip())
    return quoted[start:end]


@pytest.mark.parametrize(("expression", "token"), HOSTILE, ids=[repr(h[0]) for h in HOSTILE])
def test_hostile_expressions_are_rejected(expression: str, token: str) -> None:
    with pytest.raises(SelectionError) as err:
        compile_selection(expression, columns=COLUMNS + ("x",))
    message = str(err.value)
    assert token in message
    if token.strip() and token != "\\x00":
        # the caret points at (part of) the offending token
        underlined = _caret_span(message)
        assert underlined and (underlined in token or token in underlined), message
    assert re.search(r"at column \d+", message)


def test_hostile_compile_expression_too() -> None:
    for expression, _ in HOSTILE[:25]:
        with pytest.raises(SelectionError):
            compile_expression(expression)


def test_unknown_column_suggests_close_matches() -> None:
    with pytest.raises(SelectionError) as err:
        compile_selection("tau_ptt > 30", columns=COLUMNS)
    assert "'tau_ptt'" in str(err.value) and "did you mean 'tau_pt'" in str(err.value)


def test_resource_limits() -> None:
    long_expr = " || ".join(["tau_pt > 1"] * 2000)
    assert len(long_expr) > MAX_LENGTH
    with pytest.raises(SelectionError, match="characters long"):
        compile_selection(long_expr)
    with pytest.raises(SelectionError, match="deeper than 100"):
        compile_selection("(" * 150 + "tau_pt" + ")" * 150)
    with pytest.raises(SelectionError, match="unary"):
        compile_selection("-" * 3000 + "tau_pt")
    with pytest.raises(SelectionError, match="nested deeper"):
        compile_selection("+".join(["tau_pt"] * 500) + " > 3")
    # deep but legal expressions still work
    ok = compile_selection("(" * 90 + "tau_pt > 3" + ")" * 90 + " && " + "!" * 51 + "flag")
    np.testing.assert_array_equal(ok(T), (T["tau_pt"] > 3) & (T["flag"] == 0))
    # a long flat expression is fine: && chains stay flat
    flat = compile_selection(" && ".join(["tau_pt > 1"] * 600))
    np.testing.assert_array_equal(flat(T), T["tau_pt"] > 1)


def test_non_string_rejected() -> None:
    with pytest.raises(SelectionError):
        compile_selection(3)  # type: ignore[arg-type]


def test_error_caret_for_multiline_expression() -> None:
    with pytest.raises(SelectionError) as err:
        compile_selection("tau_pt > 30 &&\n  tau_etaa < 2", columns=COLUMNS)
    message = str(err.value)
    assert "line 2" in message and _caret_span(message) == "tau_etaa"


# ------------------------------------------------------------------------------------------
# fuzzing

_FUZZ_ALPHABET = st.sampled_from(
    list("abcxyz_019.eE+-*/%<>=!&|()[]{},:;'\"~^?@#\\ \t\n") + ["tau_pt", "abs", "std::", "&&",
                                                                 "||", "**", "not", "and", "in",
                                                                 "lambda", "__", "1e5", "3.f"]
)
FUZZ_COLUMNS = ("a", "b", "c", "x", "tau_pt")


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.text(max_size=60), st.lists(_FUZZ_ALPHABET, max_size=25).map("".join)))
def test_fuzz_only_selection_errors(text: str) -> None:
    table = {name: np.linspace(-2, 2, 7) for name in FUZZ_COLUMNS}
    for columns in (FUZZ_COLUMNS, None):
        try:
            sel = compile_selection(text, columns=columns)
        except SelectionError:
            continue
        try:
            mask = sel(table)
        except (SelectionError, InputError):
            continue
        assert np.asarray(mask).shape == (7,) and np.asarray(mask).dtype == np.bool_


# Random well-typed expression trees, rendered as text and evaluated with a reference
# evaluator that is written here independently of the compiler.

FUZZ_TABLE = {
    "a": np.random.Generator(np.random.Philox(5)).normal(0, 2, 64),
    "b": np.random.Generator(np.random.Philox(6)).uniform(-1, 3, 64),
    "c": np.random.Generator(np.random.Philox(7)).normal(0, 2, 64).astype(np.float32),
    "i": np.random.Generator(np.random.Philox(8)).integers(-6, 7, 64).astype(np.int32),
    "flag": np.random.Generator(np.random.Philox(9)).integers(0, 2, 64).astype(bool),
}
Node = tuple[str, Callable[[dict[str, np.ndarray]], Any]]


def _as_int(v: Any) -> Any:
    return v.astype(np.int32) if isinstance(v, np.ndarray) and v.dtype == bool else (
        int(v) if isinstance(v, (bool, np.bool_)) else v)


def _num_leaf() -> st.SearchStrategy[Node]:
    column = st.sampled_from(["a", "b", "c", "i"]).map(lambda n: (n, lambda e, n=n: e[n]))
    integer = st.integers(0, 20).map(lambda v: (str(v), lambda e, v=v: v))
    real = st.floats(0, 100, allow_nan=False).map(
        lambda v: (repr(v), lambda e, v=v: np.float64(v)))
    single = st.floats(0, 100, allow_nan=False, width=32).map(
        lambda v: (repr(v) + "f", lambda e, v=v: np.float32(v)))
    return st.one_of(column, integer, real, single)


def _extend_num(children: st.SearchStrategy[Node]) -> st.SearchStrategy[Node]:
    binops = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.true_divide,
              "//": np.floor_divide, "%": np.fmod}
    funcs1 = {"abs": np.abs, "std::fabs": np.abs, "sqrt": np.sqrt, "exp": np.exp,
              "TMath::Log": np.log, "cos": np.cos}
    funcs2 = {"min": np.minimum, "std::max": np.maximum, "atan2": np.arctan2}

    def binary(op: str, l: Node, r: Node) -> Node:
        f = binops[op]
        return f"({l[0]} {op} {r[0]})", lambda e: f(_as_int(l[1](e)), _as_int(r[1](e)))

    def call1(name: str, x: Node) -> Node:
        f = funcs1[name]
        return f"{name}({x[0]})", lambda e: f(_as_int(x[1](e)))

    def call2(name: str, x: Node, y: Node) -> Node:
        f = funcs2[name]
        return f"{name}({x[0]}, {y[0]})", lambda e: f(_as_int(x[1](e)), _as_int(y[1](e)))

    def power(x: Node, k: int) -> Node:
        return f"({x[0]}) ** {k}", lambda e: np.power(_as_int(x[1](e)), np.float64(k))

    def neg(x: Node) -> Node:
        return f"-({x[0]})", lambda e: np.negative(_as_int(x[1](e)))

    def compare_as_number(op: str, x: Node, y: Node) -> Node:
        f = {"<": np.less, ">=": np.greater_equal, "!=": np.not_equal}[op]
        return f"({x[0]} {op} {y[0]})", lambda e: f(x[1](e), y[1](e))

    bool_as_number = st.one_of(
        st.builds(compare_as_number, st.sampled_from(["<", ">=", "!="]), children, children),
        st.just(("(flag)", lambda e: e["flag"])),
        st.just(("(!flag)", lambda e: np.logical_not(e["flag"]))),
    )
    return st.one_of(
        st.builds(binary, st.sampled_from(sorted(binops)), children, children),
        st.builds(call1, st.sampled_from(sorted(funcs1)), children),
        st.builds(call2, st.sampled_from(sorted(funcs2)), children, children),
        st.builds(power, children, st.integers(-3, 3)),
        st.builds(neg, children),
        bool_as_number,
    )


def _bool_tree(numbers: st.SearchStrategy[Node], max_leaves: int) -> st.SearchStrategy[Node]:
    cmps = {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal,
            "==": np.equal, "!=": np.not_equal}

    def compare(op: str, l: Node, r: Node) -> Node:
        f = cmps[op]
        return f"({l[0]} {op} {r[0]})", lambda e: f(l[1](e), r[1](e))

    def chain(op1: str, op2: str, x: Node, y: Node, z: Node) -> Node:
        f, g = cmps[op1], cmps[op2]
        return (f"({x[0]} {op1} {y[0]} {op2} {z[0]})",
                lambda e: np.logical_and(f(x[1](e), y[1](e)), g(y[1](e), z[1](e))))

    def member(x: Node, values: list[int], negate: bool) -> Node:
        op = "not in" if negate else "in"
        return (f"({x[0]} {op} [{', '.join(map(str, values))}])",
                lambda e: np.isin(x[1](e), values, invert=negate))

    leaves = st.one_of(
        st.builds(compare, st.sampled_from(sorted(cmps)), numbers, numbers),
        st.builds(member, numbers, st.lists(st.integers(-3, 20), min_size=1, max_size=5),
                  st.booleans()),
        st.builds(chain, st.sampled_from(sorted(cmps)), st.sampled_from(sorted(cmps)),
                  numbers, numbers, numbers),
        st.just(("flag", lambda e: e["flag"])),
        st.sampled_from([("true", lambda e: True), ("false", lambda e: False)]),
    )

    def logic(op: str, l: Node, r: Node) -> Node:
        f = np.logical_and if op in ("&&", "and", "&") else np.logical_or
        return f"({l[0]} {op} {r[0]})", lambda e: f(l[1](e), r[1](e))

    def negate(op: str, x: Node) -> Node:
        return f"{op}({x[0]})", lambda e: np.logical_not(x[1](e))

    return st.recursive(
        leaves,
        lambda kids: st.one_of(
            st.builds(logic, st.sampled_from(["&&", "and", "&", "||", "or", "|"]), kids, kids),
            st.builds(negate, st.sampled_from(["!", "not ", "! "]), kids),
        ),
        max_leaves=max_leaves,
    )


NUMBERS = st.recursive(_num_leaf(), _extend_num, max_leaves=6)
BOOLEANS = _bool_tree(NUMBERS, max_leaves=6)


def _reference(node: Node, n: int) -> np.ndarray:
    with np.errstate(all="ignore"):
        value = node[1](FUZZ_TABLE)
    return np.broadcast_to(np.asarray(value), (n,))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(BOOLEANS)
def test_fuzz_random_selections_match_reference(node: Node) -> None:
    sel = compile_selection(node[0], columns=tuple(FUZZ_TABLE))
    expected = _reference(node, 64).astype(bool)
    np.testing.assert_array_equal(sel(FUZZ_TABLE), expected)
    np.testing.assert_array_equal(_as_numpy(sel(ak.Array(FUZZ_TABLE))), expected)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(NUMBERS)
def test_fuzz_random_expressions_match_reference(node: Node) -> None:
    expr = compile_expression(node[0], columns=tuple(FUZZ_TABLE))
    np.testing.assert_array_equal(expr(FUZZ_TABLE), _reference(node, 64))


@pytest.mark.parametrize(
    ("expression", "what"),
    [("(tau_pt, tau_eta)", "tuples"), ("abs(tau_pt)(tau_eta)", "calls"),
     ("abs(*tau_pt)", "starred"), ("abs(**tau_pt)", "keyword"), ("tau_pt tau_eta", "syntax"),
     ("tau_pt in [1] in [2]", "chained"), ("tau_pt in [1] == 1", "chained"),
     ("tau_pt in [1] + 1", "right side of 'in' must be a literal list"),
     ("tau_pt > 1 < tau_eta not in [1]", "chained")],
)
def test_ast_whitelist_is_a_second_line_of_defence(
    monkeypatch: pytest.MonkeyPatch, expression: str, what: str
) -> None:
    """With the token-grammar check switched off, the AST walk still rejects these."""
    from taucoffea.columns import selection as module

    monkeypatch.setattr(module._Lexer, "check_grammar", lambda self, tokens: None)
    with pytest.raises(SelectionError, match=what):
        compile_selection(expression)


def test_newlines_are_whitespace() -> None:
    """Multi-line selections (YAML folded or literal strings) read as one expression; the
    hostile-selection fuzzer found ``tau_pt\\n-(tau_pt)`` accepted, which is tau_pt - tau_pt."""
    table = {"tau_pt": np.array([20.0, 40.0]), "tau_eta": np.array([0.5, 2.4])}
    multi = compile_selection("tau_pt > 30\n&& abs(tau_eta) < 2.5\n")(table)
    assert multi.tolist() == compile_selection("tau_pt > 30 && abs(tau_eta) < 2.5")(table).tolist()
    assert compile_expression("tau_pt\n-(tau_pt)")(table).tolist() == [0.0, 0.0]
    with pytest.raises(SelectionError, match="line 2"):
        compile_selection("tau_pt > 30\n&& tau_eta <")
