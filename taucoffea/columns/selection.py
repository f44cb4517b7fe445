"""Safe compiler for ROOT-style selection and feature expressions.

Users copy cut strings from TauMLTools configs and ROOT macros, e.g.
``tau_pt>30 && std::abs(tau_eta)<2.3 && (tau_decayMode==0 || tau_decayMode==10)``, or from
its pandas-based evaluation configs, e.g. ``(abs(tau_dz) < 0.2) and not (tau_pt < 20)``.
These strings come from YAML files that may be shared, so they are never evaluated: they are
checked token by token, translated to a Python expression, parsed with ``ast.parse`` (which
only parses), walked against a strict whitelist of node types, and compiled into a tree of
closures that call numpy ufuncs. Nothing reaches ``eval``/``exec``/``compile``.

Semantics, and where they follow C++ rather than Python (or the other way round):

* ``&&``/``and``, ``||``/``or``, ``!``/``not`` are elementwise logical operations without
  short-circuit (``np.logical_and`` …). ``!`` binds like C++ unary ``!`` (``!a == b`` is
  ``(!a) == b``); the Python keyword ``not`` keeps Python's looser binding.
* ``&`` and ``|`` are accepted as in pandas ``query`` strings, with the precedence of ``&&`` and
  ``||``, but only on boolean operands: on integers C++ would do bit arithmetic, so a
  non-boolean operand is an error rather than a silently different result (use
  ``testbit(x, k)`` for bit tests). Mixing ``|`` with an unparenthesised ``&&`` is rejected,
  because C++ binds ``|`` tighter than ``&&`` and pandas does the opposite.
* Comparisons chain as in Python: ``20 < tau_pt < 80`` means ``20 < tau_pt && tau_pt < 80``.
* Arithmetic on booleans first turns them into integers (C++ promotion), so
  ``(a > 1) + (b > 1)`` counts. ``/`` is true division (as in ``TTree::Draw``, uproot and
  pandas; C++ would divide two integers as integers), ``//`` is floor division, ``%`` takes
  the sign of the dividend (C ``fmod``). ``**`` and ``pow`` need a literal exponent of at most
  :data:`MAX_EXPONENT` in size.
* Literals have C++ types: ``0.9`` is a double (so a float32 column is compared in double
  precision, exactly like ROOT), ``30.f`` is a float, integers are ``int`` and only widen to
  64 bits when they do not fit. ``true``/``false`` (and ``True``/``False``) are booleans.
* Functions (see :data:`DEFAULT_FUNCTIONS`) may be written bare, with ``std::`` or with their
  ``TMath::`` names (``std::abs``, ``fabs``, ``TMath::Abs``, ``TMath::Power`` …).
* ``x in [5, 6]`` and ``x not in [1, 2]`` (pandas style, also with ``(…)``) test membership
  elementwise, like ``np.isin``, and mean exactly ``(x == 5 || x == 6)``: the right side must
  be a literal list of 1 to :data:`MAX_LIST_ITEMS` (optionally signed) numbers, and a
  membership test is not chained with other comparisons (``a < x in [1]`` needs parentheses).
"""

from __future__ import annotations

import ast
import bisect
import difflib
import functools
import keyword
import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Any

import awkward as ak
import numpy as np

from taucoffea.errors import ConfigError, InputError, SelectionError

__all__ = [
    "DEFAULT_FUNCTIONS",
    "MAX_DEPTH",
    "MAX_EXPONENT",
    "MAX_LENGTH",
    "MAX_LIST_ITEMS",
    "CompiledExpression",
    "Selection",
    "SelectionFunction",
    "compile_expression",
    "compile_selection",
]

#: Longest expression accepted, in characters.
MAX_LENGTH = 10_000
#: Deepest nesting accepted, both of parentheses and of operations in the syntax tree.
MAX_DEPTH = 100
#: Largest magnitude of a literal exponent of ``**`` / ``pow``.
MAX_EXPONENT = 64
#: Most items in the literal list of ``x in [...]`` (each one is an ``==`` pass over the data).
MAX_LIST_ITEMS = 64


# --------------------------------------------------------------------------------------------
# runtime helpers (used by the compiled closures)


def _ak_leaf_dtype(x: ak.Array) -> np.dtype | None:
    layout = x.layout
    while True:
        if isinstance(layout, ak.contents.NumpyArray):
            return layout.dtype
        content = getattr(layout, "content", None)
        if content is None:
            return None
        layout = content


def _is_bool(x: Any) -> bool:
    if isinstance(x, (bool, np.bool_)):
        return True
    if isinstance(x, np.ndarray):
        return x.dtype == np.bool_
    if isinstance(x, ak.Array):
        return _ak_leaf_dtype(x) == np.bool_
    return False


def _num(x: Any) -> Any:
    """Booleans become integers before arithmetic, as C++ promotes ``bool`` to ``int``."""
    if isinstance(x, (bool, np.bool_)):
        return int(x)
    if isinstance(x, np.ndarray) and x.dtype == np.bool_:
        return x.astype(np.int32)
    if isinstance(x, ak.Array) and _ak_leaf_dtype(x) == np.bool_:
        return ak.values_astype(x, np.int32)
    return x


def _testbit(x: Any, k: Any) -> Any:
    return np.not_equal(np.bitwise_and(np.right_shift(x, int(k)), 1), 0)


def _pow(x: Any, exponent: Any) -> Any:
    return np.power(x, np.float64(exponent))


def _isin(x: Any, values: tuple[Any, ...]) -> Any:
    """Elementwise ``x in values``, built as ``x == v0 || x == v1 || …``.

    Not ``np.isin``: it cannot handle jagged awkward arrays, and for longer lists it sorts the
    column and the list together in one common dtype (``uint64`` with ``int64`` becomes
    ``float64``, inexact above 2**53), so it could disagree with the ``==`` that users read
    ``in`` as.
    """
    result = np.equal(x, values[0])
    for value in values[1:]:
        result = np.logical_or(result, np.equal(x, value))
    return result


def _check_exponent(value: float | int) -> str | None:
    if abs(value) > MAX_EXPONENT:
        return f"exponent {value!r} is too large (the limit is {MAX_EXPONENT})"
    return None


def _check_bit(value: float | int) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 64:
        return f"bit index must be an integer literal between 0 and 63, got {value!r}"
    return None


@dataclass(frozen=True)
class SelectionFunction:
    """A function callable from expressions.

    ``func`` is applied elementwise to the evaluated arguments (booleans already turned into
    integers), so it should be a numpy ufunc or built from them to keep awkward arrays
    working. ``literal_args`` lists ``(position, check)`` pairs of arguments that must be
    number literals; ``check(value)`` returns an error message or ``None``.
    """

    func: Callable[..., Any]
    n_args: int
    literal_args: tuple[tuple[int, Callable[[Any], str | None]], ...] = ()


_F = SelectionFunction
#: Functions available by default (canonical names; see the module docstring for aliases).
DEFAULT_FUNCTIONS: Mapping[str, SelectionFunction] = MappingProxyType(
    {
        "abs": _F(np.abs, 1),
        "sqrt": _F(np.sqrt, 1),
        "exp": _F(np.exp, 1),
        "log": _F(np.log, 1),
        "log10": _F(np.log10, 1),
        "sin": _F(np.sin, 1),
        "cos": _F(np.cos, 1),
        "tan": _F(np.tan, 1),
        "atan2": _F(np.arctan2, 2),
        "min": _F(np.minimum, 2),
        "max": _F(np.maximum, 2),
        "pow": _F(_pow, 2, ((1, _check_exponent),)),
        "floor": _F(np.floor, 1),
        "ceil": _F(np.ceil, 1),
        "isfinite": _F(np.isfinite, 1),
        "isnan": _F(np.isnan, 1),
        "testbit": _F(_testbit, 2, ((1, _check_bit),)),
    }
)
del _F

_TMATH = {
    "Abs": "abs", "Sqrt": "sqrt", "Exp": "exp", "Log": "log", "Log10": "log10", "Sin": "sin",
    "Cos": "cos", "Tan": "tan", "ATan2": "atan2", "Min": "min", "Max": "max", "Power": "pow",
    "Floor": "floor", "Ceil": "ceil", "Finite": "isfinite", "IsNaN": "isnan",
}
_ALIASES: Mapping[str, str] = MappingProxyType(
    {
        "fabs": "abs",
        "std::fabs": "abs",
        "TESTBIT": "testbit",
        **{f"std::{name}": name for name in DEFAULT_FUNCTIONS if name != "testbit"},
        **{f"TMath::{name}": canonical for name, canonical in _TMATH.items()},
    }
)

_BOOL_WORDS = {"true": True, "false": False, "True": True, "False": False}
_PY_LOGIC_WORDS = frozenset({"and", "or", "not"})
_KEYWORD_HINTS = {
    "is": "use '==' or '!='",
    "None": "there is no None; missing values are NaN or the TauTuple default",
    "if": "conditional expressions are not supported",
    "else": "conditional expressions are not supported",
    "lambda": "functions cannot be defined",
    "import": "imports are not allowed",
}
_STRING_PREFIXES = frozenset({"r", "u", "f", "b", "br", "rb", "fr", "rf"})

_NUMBER_RE = re.compile(r"(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?([fF]?)", re.ASCII)
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:::[A-Za-z_][A-Za-z0-9_]*)*")
_WORD_TAIL_RE = re.compile(r"[A-Za-z0-9_.]*")
_SPACE = frozenset(" \t\r\n\f\v")
_OPERATORS = (
    "&&", "||", "==", "!=", "<=", ">=", "**", "//",
    "<", ">", "+", "-", "*", "/", "%", "!", "&", "|", "(", ")", ",",
)
_BAD_SEQUENCES = (
    (":=", "assignment expressions are not allowed"),
    ("<<", "bit shifts are not supported; use testbit(x, k)"),
    (">>", "bit shifts are not supported; use testbit(x, k)"),
)
_BAD_CHARS = {
    ".": "attribute access ('.') is not allowed",
    "[": "subscripts and lists are not allowed (a list of numbers may only follow 'in')",
    "]": "subscripts and lists are not allowed (a list of numbers may only follow 'in')",
    "{": "dicts and sets are not allowed",
    "}": "dicts and sets are not allowed",
    ";": "only a single expression is allowed",
    "=": "assignment ('=') is not allowed; use '==' to compare",
    ":": "':' is not allowed",
    "~": "bitwise '~' is not supported; use '!' for a logical not",
    "^": "'^' is not supported; use '**' for a power",
    "?": "the ternary operator '?:' is not supported",
    "@": "'@' is not allowed",
    "\\": "backslashes are not allowed",
}
_INT32_MAX = 2**31 - 1
_INT64_MAX = 2**63 - 1

_ROOT_TO_PY = {"&&": "and", "||": "or", "&": "and", "|": "or", "!": "~"}
_UNARY = frozenset({"!", "-", "+", "not"})
_BINARY = frozenset(
    {"&&", "||", "&", "|", "and", "or", "==", "!=", "<", "<=", ">", ">=",
     "+", "-", "*", "/", "//", "%", "**", "in", "not in"}
)
_MEMBERSHIP = frozenset({"in", "not in"})
#: What may follow the list of a membership test without parentheses: Python would otherwise
#: chain (``x in [1] == y``) or apply arithmetic to the list (``x in [1] + 1``).
_AFTER_LIST = frozenset({"&&", "||", "&", "|", "and", "or", ")", ","})


# --------------------------------------------------------------------------------------------
# error reporting


def _error(source: str, start: int, end: int, message: str) -> SelectionError:
    """A SelectionError quoting the expression with a caret line under ``source[start:end]``."""
    start = max(0, min(start, len(source)))
    end = max(start + 1, min(end, len(source) + 1))
    line_start = source.rfind("\n", 0, start) + 1
    line_end = source.find("\n", start)
    if line_end < 0:
        line_end = len(source)
    # keep the quoted line readable for very long expressions
    end = min(end, start + 80)  # a long span is shown by its beginning
    lo = max(line_start, start - 60)
    hi = min(line_end, end + 40)
    prefix = "..." if lo > line_start else ""
    suffix = "..." if hi < line_end else ""
    snippet = prefix + "".join(
        c if c.isprintable() or c == "\t" else "?" for c in source[lo:hi]
    ) + suffix
    pad = "".join(c if c == "\t" else " " for c in prefix + source[lo:start])
    width = max(1, min(end, hi) - start)
    column = start - line_start + 1
    where = f"at column {column}" + (
        f" of line {source.count(chr(10), 0, start) + 1}" if "\n" in source else ""
    )
    return SelectionError(f"{message} {where}\n    {snippet}\n    {pad}{'^' * width}")


def _suggest(name: str, candidates: Collection[str]) -> str:
    close = difflib.get_close_matches(name, list(candidates), n=3, cutoff=0.6)
    if not close:
        return ""
    return " (did you mean " + " or ".join(repr(c) for c in close) + "?)"


# --------------------------------------------------------------------------------------------
# tokenizer and translation to Python


@dataclass(frozen=True)
class _Token:
    kind: str  # "num", "name", "func", "bool" or "op"
    text: str  # as written by the user
    start: int
    end: int
    py: str  # what is emitted into the Python source
    literal_type: str = ""  # "int", "int64", "double", "float" for numbers
    in_list: bool = False  # part of the literal list after 'in' (checked by the lexer)


@dataclass
class _Translation:
    source: str
    tokens: list[_Token]
    py_source: str
    py_starts: list[int]
    py_ends: list[int]

    def span(self, py_start: int, py_end: int) -> tuple[int, int]:
        """Original-text span covering the Python-source span [py_start, py_end)."""
        first = bisect.bisect_left(self.py_starts, py_start)
        last = bisect.bisect_left(self.py_starts, py_end) - 1
        first = min(first, len(self.tokens) - 1)
        last = max(first, min(last, len(self.tokens) - 1))
        return self.tokens[first].start, self.tokens[last].end

    def node_span(self, node: ast.AST) -> tuple[int, int]:
        return self.span(node.col_offset, node.end_col_offset or node.col_offset + 1)

    def tokens_between(self, py_start: int, py_end: int) -> list[_Token]:
        lo = bisect.bisect_left(self.py_starts, py_start)
        hi = bisect.bisect_left(self.py_starts, py_end)
        return self.tokens[lo:hi]

    def token_before(self, py_pos: int) -> _Token | None:
        i = bisect.bisect_left(self.py_starts, py_pos) - 1
        return self.tokens[i] if i >= 0 else None

    def token_at_or_after(self, py_pos: int) -> _Token | None:
        i = bisect.bisect_left(self.py_starts, py_pos)
        return self.tokens[i] if i < len(self.tokens) else None


class _Lexer:
    """Splits the user's text into tokens, resolving names, and checks the token grammar."""

    def __init__(
        self,
        source: str,
        columns: Collection[str] | None,
        functions: Mapping[str, SelectionFunction],
    ) -> None:
        self.source = source
        self.columns = columns
        self.functions = functions
        self.used_columns: set[str] = set()

    def fail(self, start: int, end: int, message: str) -> SelectionError:
        return _error(self.source, start, end, message)

    # -- scanning ------------------------------------------------------------------------

    def scan(self) -> list[_Token]:
        src = self.source
        tokens: list[_Token] = []
        i = 0
        n = len(src)
        while i < n:
            c = src[i]
            if c in _SPACE:
                i += 1
                continue
            if c.isascii() and (c.isdigit() or (c == "." and i + 1 < n and src[i + 1].isdigit())):
                tokens.append(self._number(i))
            elif c.isascii() and (c.isalpha() or c == "_"):
                tok = self._name(i)
                if tok.kind == "op" and tok.text == "in":
                    if tokens and tokens[-1].kind == "op" and tokens[-1].text == "not":
                        # one operator, so that the grammar sees 'x not in [...]' as binary
                        tok = _Token("op", "not in", tokens.pop().start, tok.end, "not in")
                    tokens.append(tok)
                    tokens.extend(self._literal_list(tok))
                else:
                    tokens.append(tok)
            elif c in "'\"":
                raise self._string_error(i, i)
            else:
                tokens.append(self._operator(i))
            i = tokens[-1].end
        return tokens

    def _number(self, i: int) -> _Token:
        src = self.source
        m = _NUMBER_RE.match(src, i)
        assert m is not None  # the caller saw a digit
        end = m.end()
        tail = _WORD_TAIL_RE.match(src, end)
        if tail is not None and tail.end() > end:
            raise self.fail(i, tail.end(), f"malformed number {src[i:tail.end()]!r}")
        text = m.group(0)
        is_float32 = bool(m.group(1))
        body = text[:-1] if is_float32 else text
        if not is_float32 and body.isdigit():
            if len(body) > 1 and body.startswith("0"):
                raise self.fail(i, end, f"integer literal {text!r} has a leading zero, which "
                                "means octal in C++; remove it")
            if len(body) > 19 or int(body) > _INT64_MAX:
                raise self.fail(i, end, f"integer literal {text!r} does not fit in 64 bits")
            value = int(body)
            return _Token("num", text, i, end, str(value),
                          "int" if value <= _INT32_MAX else "int64")
        fvalue = float(body)
        limit = np.finfo(np.float32 if is_float32 else np.float64).max
        if not np.isfinite(fvalue) or fvalue > limit:
            raise self.fail(i, end, f"number literal {text!r} is out of range")
        return _Token("num", text, i, end, repr(fvalue), "float" if is_float32 else "double")

    def _name(self, i: int) -> _Token:
        src = self.source
        m = _NAME_RE.match(src, i)
        assert m is not None
        text, end = m.group(0), m.end()
        if end < len(src) and src[end] in "'\"" and text.lower() in _STRING_PREFIXES:
            raise self._string_error(i, end)
        if any(part.startswith("__") for part in text.split("::")):
            raise self.fail(i, end, f"name {text!r} is not allowed (names starting with '__' "
                            "are reserved)")
        if text in _BOOL_WORDS:
            return _Token("bool", text, i, end, str(_BOOL_WORDS[text]))
        if text in _PY_LOGIC_WORDS or text == "in":
            return _Token("op", text, i, end, text)
        if keyword.iskeyword(text):
            hint = _KEYWORD_HINTS.get(text)
            raise self.fail(i, end, f"Python keyword {text!r} is not allowed"
                            + (f" ({hint})" if hint else ""))
        j = end
        while j < len(src) and src[j] in _SPACE:
            j += 1
        is_call = j < len(src) and src[j] == "("
        if is_call or "::" in text:
            canonical = self._resolve_function(text)
            if canonical is None:
                known = sorted(self.functions) + sorted(
                    a for a, c in _ALIASES.items() if c in self.functions
                )
                what = "function" if is_call else "namespaced name (only functions may have one)"
                raise self.fail(i, end, f"unknown {what} {text!r}{_suggest(text, known)}; "
                                f"allowed functions are {', '.join(sorted(self.functions))}")
            if not is_call:
                raise self.fail(i, end, f"function {text!r} must be called with arguments")
            return _Token("func", text, i, end, canonical)
        if self.columns is not None and text not in self.columns:
            if self._resolve_function(text) is not None:
                raise self.fail(i, end, f"function {text!r} must be called with arguments")
            raise self.fail(i, end, f"unknown column {text!r}{_suggest(text, self.columns)}")
        self.used_columns.add(text)
        return _Token("name", text, i, end, text)

    def _literal_list(self, in_tok: _Token) -> list[_Token]:
        """Tokens of the list after ``in``, which may only hold (signed) number literals.

        The whole list is lexed here, so that ``[``/``]`` exist nowhere else and anything that
        is not a number (a name, a call, a nested list, a string, a comprehension) is reported
        as such instead of as whatever error its first token would give later. ``(…)`` is
        accepted as a spelling of ``[…]`` and emitted as a Python list.
        """
        src, n = self.source, len(self.source)
        op = in_tok.text
        j = self._skip_space(in_tok.end)
        if j >= n or src[j] not in "[(":
            if j >= n:
                raise self.fail(in_tok.start, in_tok.end, f"expression ends after {op!r}; "
                                "expected a list of numbers such as [1, 2]")
            start, end = self._thing_at(j)
            raise self.fail(start, end, f"{op!r} must be followed by a literal list of numbers "
                            f"such as [1, 2], found {src[start:end]!r}")
        opener, closer = src[j], "]" if src[j] == "[" else ")"
        open_at = j
        tokens = [_Token("op", opener, j, j + 1, "[", in_list=True)]
        items = 0
        j = self._skip_space(j + 1)
        while True:
            if j >= n:
                raise self.fail(open_at, open_at + 1, f"{opener!r} of the list after {op!r} "
                                "is never closed")
            if src[j] == closer:
                if items == 0:
                    raise self.fail(open_at, j + 1, f"empty list after {op!r}")
                tokens.append(_Token("op", closer, j, j + 1, "]", in_list=True))
                return tokens
            item_start = j
            if src[j] in "+-":
                tokens.append(_Token("op", src[j], j, j + 1, src[j], in_list=True))
                j = self._skip_space(j + 1)
            if _NUMBER_RE.match(src, j) is None:
                raise self._bad_list_item(j, op)
            tokens.append(replace(self._number(j), in_list=True))
            items += 1
            if items > MAX_LIST_ITEMS:
                raise self.fail(item_start, tokens[-1].end, f"the list after {op!r} has more "
                                f"than {MAX_LIST_ITEMS} items")
            j = self._skip_space(tokens[-1].end)
            if j < n and src[j] == ",":
                tokens.append(_Token("op", ",", j, j + 1, ",", in_list=True))
                j = self._skip_space(j + 1)
            elif j < n and src[j] != closer:
                start, end = self._thing_at(j)
                raise self.fail(start, end, f"expected ',' or {closer!r} in the list after "
                                f"{op!r} but found {src[start:end]!r}")

    def _bad_list_item(self, j: int, op: str) -> SelectionError:
        """The error for something that is not a number literal inside the list after 'in'."""
        if j >= len(self.source):
            return self.fail(j - 1, j, f"the list after {op!r} is never closed")
        c = self.source[j]
        if c in "[(":
            return self.fail(j, j + 1, f"nested lists are not allowed after {op!r}")
        if c in "'\"":
            return self._string_error(j, j)
        start, end = self._thing_at(j)
        what = repr(self.source[start:end]) if c not in ",])" else f"{c!r} where a number belongs"
        return self.fail(start, end, f"the list after {op!r} may only hold number literals "
                         f"(e.g. [1, 2] or [-1, 0.5]), found {what}")

    def _thing_at(self, j: int) -> tuple[int, int]:
        """Span of the word (or the single character) at ``j``, for error messages."""
        m = _NAME_RE.match(self.source, j) or _WORD_TAIL_RE.match(self.source, j)
        end = m.end() if m is not None and m.end() > j else j + 1
        return j, end

    def _skip_space(self, j: int) -> int:
        while j < len(self.source) and self.source[j] in _SPACE:
            j += 1
        return j

    def _resolve_function(self, text: str) -> str | None:
        if text in self.functions:
            return text
        canonical = _ALIASES.get(text)
        if canonical is not None and canonical in self.functions:
            return canonical
        return None

    def _string_error(self, start: int, quote_pos: int) -> SelectionError:
        src = self.source
        quote = src[quote_pos]
        j = quote_pos + 1
        while j < len(src) and src[j] != quote:
            j += 2 if src[j] == "\\" else 1
        end = min(j + 1, len(src))
        return self.fail(start, end, f"string literal {src[start:end]} is not allowed")

    def _operator(self, i: int) -> _Token:
        src = self.source
        for seq, message in _BAD_SEQUENCES:
            if src.startswith(seq, i):
                raise self.fail(i, i + len(seq), f"{message} (found {seq!r})")
        for op in _OPERATORS:
            if src.startswith(op, i):
                py = _ROOT_TO_PY.get(op, op)
                return _Token("op", op, i, i + len(op), py)
        c = src[i]
        if c in _BAD_CHARS:
            raise self.fail(i, i + 1, f"{_BAD_CHARS[c]} (found {c!r})")
        shown = repr(c) if c.isprintable() else ascii(c)
        raise self.fail(i, i + 1, f"unexpected character {shown}")

    # -- grammar -------------------------------------------------------------------------

    def check_grammar(self, tokens: list[_Token]) -> None:
        """Operand/operator alternation, balanced parentheses, commas only in calls, arity.

        Catching these here gives messages in terms of what the user wrote instead of the
        translated Python; ``ast.parse`` remains as a second check.
        """
        if not tokens:
            raise self.fail(0, len(self.source), "empty expression")
        # stack entries: [open-paren token, function token or None, number of arguments]
        stack: list[list[Any]] = []
        expect_operand = True
        prev: _Token | None = None
        unary_run = 0
        for k, tok in enumerate(tokens):
            if tok.in_list:
                # the lexer has checked the list after 'in'; as a whole it is one operand
                expect_operand, prev, unary_run = False, tok, 0
                continue
            if prev is not None and prev.in_list:
                self._check_after_list(tok)
            unary_run = unary_run + 1 if expect_operand and tok.text in _UNARY else 0
            if unary_run > MAX_DEPTH:
                raise self.fail(tok.start, tok.end,
                                f"more than {MAX_DEPTH} unary operators in a row")
            text = tok.text
            if expect_operand:
                if tok.kind in ("num", "name", "bool"):
                    expect_operand = False
                elif tok.kind == "func":
                    pass  # its "(" follows (the lexer only makes "func" tokens before one)
                elif text == "(":
                    func = prev if prev is not None and prev.kind == "func" else None
                    stack.append([tok, func, 0])
                    if len(stack) > MAX_DEPTH:
                        raise self.fail(tok.start, tok.end,
                                        f"parentheses nested deeper than {MAX_DEPTH} levels")
                    if func is not None and k + 1 < len(tokens) and tokens[k + 1].text == ")":
                        expect_operand = False  # empty argument list
                elif text in _UNARY:
                    pass
                else:
                    after = f" after {prev.text!r}" if prev is not None else ""
                    raise self.fail(tok.start, tok.end, f"expected a value{after} but found "
                                    f"{text!r}")
            else:
                if text in _BINARY:
                    expect_operand = True
                elif text == ")":
                    if not stack:
                        raise self.fail(tok.start, tok.end, "unmatched ')'")
                    _, func, n_args = stack.pop()
                    if func is not None:
                        got = n_args + (0 if prev is not None and prev.text == "(" else 1)
                        self._check_arity(func, got)
                elif text == ",":
                    if not stack or stack[-1][1] is None:
                        raise self.fail(tok.start, tok.end, "',' is only allowed between "
                                        "function arguments (tuples are not supported)")
                    stack[-1][2] += 1
                    expect_operand = True
                else:
                    raise self.fail(tok.start, tok.end, f"expected an operator after "
                                    f"{prev.text if prev else ''!r} but found {text!r}")
            prev = tok
        if expect_operand:
            last = tokens[-1]
            raise self.fail(last.start, last.end,
                            f"expression ends unexpectedly after {last.text!r}")
        if stack:
            open_tok = stack[-1][0]
            raise self.fail(open_tok.start, open_tok.end, "'(' is never closed")

    def _check_after_list(self, tok: _Token) -> None:
        """Reject what Python would read as chaining or arithmetic on the list of 'in'."""
        if tok.text in _AFTER_LIST:
            return
        if tok.text in _MEMBERSHIP or tok.text in ("==", "!=", "<", "<=", ">", ">="):
            raise self.fail(tok.start, tok.end, f"a membership test cannot be chained with "
                            f"{tok.text!r}; add parentheses, e.g. (x in [1, 2]) == flag")
        if tok.text in _BINARY:
            raise self.fail(tok.start, tok.end, f"{tok.text!r} cannot follow the list of a "
                            "membership test; add parentheses around (x in [...])")

    def _check_arity(self, func: _Token, got: int) -> None:
        expected = self.functions[func.py].n_args
        if got != expected:
            raise self.fail(func.start, func.end, f"function {func.text!r} takes {expected} "
                            f"argument{'s' if expected != 1 else ''}, got {got}")


def _translate(source: str, tokens: list[_Token]) -> _Translation:
    parts: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    pos = 0
    for tok in tokens:
        if parts:
            parts.append(" ")
            pos += 1
        starts.append(pos)
        parts.append(tok.py)
        pos += len(tok.py)
        ends.append(pos)
    return _Translation(source, tokens, "".join(parts), starts, ends)


# --------------------------------------------------------------------------------------------
# AST whitelist walk and closure compilation

_Fn = Callable[[Mapping[str, Any]], Any]

_NODE_NAMES = {
    ast.Attribute: "attribute access",
    ast.Subscript: "subscripts",
    ast.Lambda: "lambda",
    ast.NamedExpr: "assignment expressions",
    ast.IfExp: "conditional expressions",
    ast.ListComp: "comprehensions",
    ast.SetComp: "comprehensions",
    ast.DictComp: "comprehensions",
    ast.GeneratorExp: "generator expressions",
    ast.JoinedStr: "f-strings",
    ast.Starred: "starred arguments",
    ast.Tuple: "tuples",
    ast.List: "lists",
    ast.Set: "sets",
    ast.Dict: "dicts",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield",
}

_BINOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: np.add,
    ast.Sub: np.subtract,
    ast.Mult: np.multiply,
    ast.Div: np.true_divide,
    ast.FloorDiv: np.floor_divide,
    ast.Mod: np.fmod,
}
_CMPOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Eq: np.equal,
    ast.NotEq: np.not_equal,
    ast.Lt: np.less,
    ast.LtE: np.less_equal,
    ast.Gt: np.greater,
    ast.GtE: np.greater_equal,
}


class _Compiler:
    def __init__(self, tr: _Translation, functions: Mapping[str, SelectionFunction]) -> None:
        self.tr = tr
        self.functions = functions
        self.literals = {
            start: tok for start, tok in zip(tr.py_starts, tr.tokens, strict=True)
            if tok.kind == "num"
        }

    def fail(self, node: ast.AST, message: str) -> SelectionError:
        start, end = self.tr.node_span(node)
        return _error(self.tr.source, start, end, message)

    def compile(self, node: ast.AST, depth: int = 0) -> _Fn:
        if depth > MAX_DEPTH:
            raise self.fail(node, f"expression nested deeper than {MAX_DEPTH} levels")
        # the whitelist: exactly these node types (not subclasses) are compiled
        handler = {
            ast.Expression: self._Expression,
            ast.Constant: self._Constant,
            ast.Name: self._Name,
            ast.UnaryOp: self._UnaryOp,
            ast.BinOp: self._BinOp,
            ast.Compare: self._Compare,
            ast.BoolOp: self._BoolOp,
            ast.Call: self._Call,
        }.get(type(node))
        if handler is None:
            what = _NODE_NAMES.get(type(node), f"'{type(node).__name__}' syntax")
            raise self.fail(node, f"{what} not allowed")
        return handler(node, depth + 1)  # type: ignore[operator]

    def _Expression(self, node: ast.Expression, depth: int) -> _Fn:
        return self.compile(node.body, depth)

    # -- leaves --------------------------------------------------------------------------

    def _Constant(self, node: ast.Constant, depth: int) -> _Fn:
        value = node.value
        if isinstance(value, bool):
            const: Any = value
        elif isinstance(value, (int, float)):
            tok = self.literals.get(node.col_offset)
            literal_type = tok.literal_type if tok is not None else "double"
            const = {
                "int": lambda v: int(v),
                "int64": np.int64,
                "double": np.float64,
                "float": np.float32,
            }[literal_type](value)
        else:
            raise self.fail(node, f"{type(value).__name__} literals not allowed")
        return lambda env: const

    def _Name(self, node: ast.Name, depth: int) -> _Fn:
        if not isinstance(node.ctx, ast.Load) or node.id.startswith("__"):
            raise self.fail(node, f"name {node.id!r} not allowed")
        tok = self.tr.token_at_or_after(node.col_offset)
        if tok is None or tok.kind != "name":
            raise self.fail(node, f"name {node.id!r} not allowed here")
        name = node.id
        return lambda env: env[name]

    # -- operators -----------------------------------------------------------------------

    def _UnaryOp(self, node: ast.UnaryOp, depth: int) -> _Fn:
        operand = self.compile(node.operand, depth)
        if isinstance(node.op, (ast.Not, ast.Invert)):
            return lambda env: np.logical_not(operand(env))
        if isinstance(node.op, ast.USub):
            return lambda env: np.negative(_num(operand(env)))
        if isinstance(node.op, ast.UAdd):
            return lambda env: _num(operand(env))
        raise self.fail(node, "unary operator not allowed")

    def _BinOp(self, node: ast.BinOp, depth: int) -> _Fn:
        left = self.compile(node.left, depth)
        if isinstance(node.op, ast.Pow):
            exponent = self._literal(node.right)
            if exponent is None:
                raise self.fail(node.right, "the exponent of '**' must be a number literal")
            problem = _check_exponent(exponent)
            if problem:
                raise self.fail(node.right, problem)
            return lambda env: _pow(_num(left(env)), exponent)
        op = _BINOPS.get(type(node.op))
        if op is None:
            raise self.fail(node, "operator not allowed")
        right = self.compile(node.right, depth)
        return lambda env: op(_num(left(env)), _num(right(env)))

    def _Compare(self, node: ast.Compare, depth: int) -> _Fn:
        if any(isinstance(op, (ast.In, ast.NotIn)) for op in node.ops):
            return self._membership(node, depth)
        operands = [self.compile(node.left, depth)]
        ops = []
        prev_node: ast.expr = node.left
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            func = _CMPOPS.get(type(op))
            if func is None:
                between = self.tr.tokens_between(prev_node.end_col_offset or 0,
                                                 comparator.col_offset)
                start = between[0].start if between else self.tr.node_span(node)[0]
                end = between[-1].end if between else self.tr.node_span(node)[1]
                raise _error(self.tr.source, start, end, "comparison operator not allowed")
            ops.append(func)
            operands.append(self.compile(comparator, depth))
            prev_node = comparator

        if len(ops) == 1:
            (cmp,), (a, b) = ops, operands
            return lambda env: cmp(a(env), b(env))

        def chained(env: Mapping[str, Any]) -> Any:
            values = [f(env) for f in operands]
            result = ops[0](values[0], values[1])
            for i in range(1, len(ops)):
                result = np.logical_and(result, ops[i](values[i], values[i + 1]))
            return result

        return chained

    def _membership(self, node: ast.Compare, depth: int) -> _Fn:
        """``x in [c1, …]`` / ``x not in [...]``: the only place a list node is accepted.

        The lexer already allows nothing but number literals in the list; this re-checks the
        tree so that the whitelist holds on its own.
        """
        op_tokens = self.tr.tokens_between(node.left.end_col_offset or 0,
                                           node.comparators[0].col_offset)
        if len(node.ops) > 1:
            start, end = self.tr.node_span(node)
            for tok in self.tr.tokens:
                if start <= tok.start < end and tok.text in _MEMBERSHIP:
                    start, end = tok.start, tok.end
                    break
            raise _error(self.tr.source, start, end, "a membership test cannot be chained "
                         "with other comparisons; add parentheses")
        container = node.comparators[0]
        word = op_tokens[0].text if op_tokens else "in"
        if not isinstance(container, (ast.List, ast.Tuple)):
            raise self.fail(container, f"the right side of {word!r} must be a literal list of "
                            "numbers such as [1, 2]")
        if not container.elts:
            raise self.fail(container, f"empty list after {word!r}")
        if len(container.elts) > MAX_LIST_ITEMS:
            raise self.fail(container, f"the list after {word!r} has more than "
                            f"{MAX_LIST_ITEMS} items")
        for elt in container.elts:
            if self._literal(elt) is None:
                raise self.fail(elt, f"the list after {word!r} may only hold number literals")
        # literals compile to constant closures; typing them like '==' operands keeps
        # 'x in [0.9]' equal to 'x == 0.9' (compared in double, as ROOT does)
        constants = (self.compile(elt, depth)({}) for elt in container.elts)
        # drop repeats, keyed by type too: 1 and 1.0 are equal in Python but are not the
        # same comparison on a 64-bit integer column
        values = tuple({(type(c), c): c for c in constants}.values())
        left = self.compile(node.left, depth)
        if isinstance(node.ops[0], ast.NotIn):
            return lambda env: np.logical_not(_isin(left(env), values))
        return lambda env: _isin(left(env), values)

    def _BoolOp(self, node: ast.BoolOp, depth: int) -> _Fn:
        combine = np.logical_and if isinstance(node.op, ast.And) else np.logical_or
        gap_tokens = self._gap_operators(node)
        bitwise_style = [t for t in gap_tokens if t.text in ("&", "|")]
        if any(t.text == "|" for t in gap_tokens):
            self._check_pipe_precedence(node)
        values = [self.compile(v, depth) for v in node.values]
        if bitwise_style:
            for v in node.values:
                if self._literal(v) is not None:
                    raise self.fail(v, f"operand of {bitwise_style[0].text!r} is a number: "
                                    "'&'/'|' are logical here, not bit operations; use "
                                    "testbit(x, k) for bit tests")
            values = [self._require_bool(f, v, bitwise_style[0].text)
                      for f, v in zip(values, node.values, strict=True)]

        def boolop(env: Mapping[str, Any]) -> Any:
            return functools.reduce(combine, (f(env) for f in values))

        return boolop

    def _gap_operators(self, node: ast.BoolOp) -> list[_Token]:
        word = "and" if isinstance(node.op, ast.And) else "or"
        found = []
        for a, b in zip(node.values, node.values[1:]):
            for tok in self.tr.tokens_between(a.end_col_offset or 0, b.col_offset):
                if tok.py == word:
                    found.append(tok)
        return found

    def _check_pipe_precedence(self, node: ast.BoolOp) -> None:
        for child in node.values:
            if not (isinstance(child, ast.BoolOp) and isinstance(child.op, ast.And)):
                continue
            before = self.tr.token_before(child.col_offset)
            after = self.tr.token_at_or_after(child.end_col_offset or 0)
            if before is not None and before.text == "(" and after is not None \
                    and after.text == ")":
                continue
            strong = [t for t in self._gap_operators(child) if t.text in ("&&", "and")]
            if strong:
                raise _error(self.tr.source, strong[0].start, strong[0].end,
                             f"ambiguous mix of '|' and {strong[0].text!r}: C++ binds '|' "
                             "tighter, pandas looser; add parentheses")

    def _require_bool(self, fn: _Fn, node: ast.AST, op: str) -> _Fn:
        start, end = self.tr.node_span(node)
        source = self.tr.source

        def checked(env: Mapping[str, Any]) -> Any:
            value = fn(env)
            if not _is_bool(value):
                raise _error(source, start, end,
                             f"operand of {op!r} is not boolean: '&'/'|' are logical here and "
                             "C++ would do bit arithmetic on numbers; use '&&'/'||', a "
                             "comparison, or testbit(x, k)")
            return value

        return checked

    def _Call(self, node: ast.Call, depth: int) -> _Fn:
        if not isinstance(node.func, ast.Name) or node.func.id not in self.functions:
            raise self.fail(node, "only calls of the allowed functions are allowed")
        if node.keywords:
            raise self.fail(node, "keyword arguments not allowed")
        spec = self.functions[node.func.id]
        if len(node.args) != spec.n_args:
            raise self.fail(node, f"function takes {spec.n_args} argument(s), "
                            f"got {len(node.args)}")
        args = [self.compile(a, depth) for a in node.args]
        for position, check in spec.literal_args:
            value = self._literal(node.args[position])
            if value is None:
                raise self.fail(node.args[position], f"argument {position + 1} of "
                                f"{node.func.id!r} must be a number literal")
            problem = check(value)
            if problem:
                raise self.fail(node.args[position], problem)
        func = spec.func
        if len(args) == 1:
            (arg,) = args
            return lambda env: func(_num(arg(env)))
        return lambda env: func(*[_num(a(env)) for a in args])

    @staticmethod
    def _literal(node: ast.AST) -> int | float | None:
        """Value of a (possibly signed) number literal node, else None."""
        sign = 1
        while isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            sign *= -1 if isinstance(node.op, ast.USub) else 1
            node = node.operand
        if isinstance(node, ast.Constant) and type(node.value) in (int, float):
            return sign * node.value
        return None


# --------------------------------------------------------------------------------------------
# public API


def _fetch(table: Any, name: str, expression: str) -> Any:
    try:
        value = table[name]
    except (KeyError, IndexError, ValueError, TypeError):
        raise InputError(
            f"column {name!r} used by expression {expression!r} is not in the table"
        ) from None
    if isinstance(value, (np.ndarray, ak.Array)):
        return value
    if hasattr(value, "to_numpy"):  # pandas Series
        return value.to_numpy()
    return np.asarray(value)


def _n_rows(table: Any) -> int:
    if isinstance(table, ak.Array):
        return len(table)
    if isinstance(table, Mapping):
        first = next(iter(table.values()), None)
        return 0 if first is None else len(first)
    shape = getattr(table, "shape", None)  # pandas DataFrame, numpy structured array
    if isinstance(shape, tuple) and shape:
        return int(shape[0])
    return len(table)


class CompiledExpression:
    """A numeric expression compiled by :func:`compile_expression`.

    Calling it with a table (a dict of arrays, an awkward record array, a pandas DataFrame —
    anything with ``table[name]``) evaluates it elementwise and returns a numpy or awkward
    array with one entry per row (constants are broadcast). It pickles by recompiling from
    the expression, so processors holding one can be shipped to workers.
    """

    __slots__ = ("_columns_arg", "_fn", "_functions_arg", "columns", "expression")

    def __init__(
        self,
        expression: str,
        columns: frozenset[str],
        fn: _Fn,
        columns_arg: tuple[str, ...] | None,
        functions_arg: dict[str, SelectionFunction] | None,
    ) -> None:
        self.expression = expression
        self.columns = columns
        self._fn = fn
        self._columns_arg = columns_arg
        self._functions_arg = functions_arg

    def _evaluate(self, table: Any) -> Any:
        env = {name: _fetch(table, name, self.expression) for name in self.columns}
        try:
            with np.errstate(all="ignore"):
                return self._fn(env)
        except SelectionError:
            raise
        except (TypeError, ValueError, OverflowError) as err:
            raise SelectionError(f"cannot evaluate {self.expression!r}: {err}") from err

    def __call__(self, table: Any) -> Any:
        result = self._evaluate(table)
        if isinstance(result, (np.ndarray, ak.Array)) and getattr(result, "ndim", 1) > 0:
            return result
        value = np.asarray(result)
        return np.full(_n_rows(table), value.item(), dtype=value.dtype)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.expression!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild, (type(self) is Selection, self.expression, self._columns_arg,
                           self._functions_arg))


class Selection(CompiledExpression):
    """A boolean selection compiled by :func:`compile_selection`; calling it gives a mask.

    Non-boolean results are tested against zero as in C++ (so ``flag`` alone selects
    ``flag != 0``, and NaN counts as true).
    """

    __slots__ = ()

    def __call__(self, table: Any) -> Any:
        result = self._evaluate(table)
        if isinstance(result, ak.Array):
            return result if _is_bool(result) else result != 0
        if isinstance(result, np.ndarray) and result.ndim > 0:
            return result if result.dtype == np.bool_ else result != 0
        return np.full(_n_rows(table), bool(np.asarray(result).item()), dtype=bool)


def _rebuild(
    is_selection: bool,
    expression: str,
    columns: tuple[str, ...] | None,
    functions: dict[str, SelectionFunction] | None,
) -> CompiledExpression:
    factory = compile_selection if is_selection else compile_expression
    return factory(expression, columns=columns, functions=functions)


def _validate_functions(functions: Mapping[str, SelectionFunction]) -> None:
    for name, spec in functions.items():
        if (
            not isinstance(name, str)
            or not name.isidentifier()
            or keyword.iskeyword(name)
            or name.startswith("__")
            or name in _BOOL_WORDS
        ):
            raise ConfigError(f"invalid selection function name {name!r}")
        if not isinstance(spec, SelectionFunction):
            raise ConfigError(
                f"selection function {name!r} must be a SelectionFunction, got "
                f"{type(spec).__name__}"
            )


def _compile(
    cls: type[CompiledExpression],
    expression: str,
    columns: Collection[str] | None,
    functions: Mapping[str, SelectionFunction] | None,
) -> CompiledExpression:
    if not isinstance(expression, str):
        raise SelectionError(f"an expression must be a string, got {type(expression).__name__}")
    if len(expression) > MAX_LENGTH:
        raise SelectionError(
            f"expression is {len(expression)} characters long; the limit is {MAX_LENGTH} "
            f"(starts with {expression[:40]!r})"
        )
    if functions is None:
        funcs: Mapping[str, SelectionFunction] = DEFAULT_FUNCTIONS
        functions_arg = None
    else:
        _validate_functions(functions)
        funcs = functions
        functions_arg = dict(functions)
    if isinstance(columns, str):
        raise SelectionError("columns must be a collection of names, not a single string")
    column_set = None if columns is None else frozenset(columns)

    lexer = _Lexer(expression, column_set, funcs)
    tokens = lexer.scan()
    lexer.check_grammar(tokens)
    tr = _translate(expression, tokens)
    try:
        tree = ast.parse(tr.py_source, mode="eval")
    except SyntaxError as err:
        offset = (err.offset or 1) - 1
        tok = tr.token_at_or_after(offset) or tokens[-1]
        raise _error(expression, tok.start, tok.end,
                     f"invalid syntax near {tok.text!r}") from None
    except (RecursionError, MemoryError):
        raise SelectionError(
            f"expression {expression[:60]!r}… is too deeply nested to parse"
        ) from None
    fn = _Compiler(tr, funcs).compile(tree)
    columns_arg = None if column_set is None else tuple(sorted(column_set))
    return cls(expression, frozenset(lexer.used_columns), fn, columns_arg, functions_arg)


def compile_selection(
    expression: str,
    *,
    columns: Collection[str] | None = None,
    functions: Mapping[str, SelectionFunction] | None = None,
) -> Selection:
    """Compile a ROOT/pandas-style cut string into a :class:`Selection` (row mask).

    ``columns``, when given, is the set of valid column names: any other name is rejected at
    compile time with close matches suggested. ``functions`` replaces
    :data:`DEFAULT_FUNCTIONS` (extend it with ``{**DEFAULT_FUNCTIONS, ...}``). Every rejected
    string raises :class:`SelectionError` pointing at the offending token.
    """
    result = _compile(Selection, expression, columns, functions)
    assert isinstance(result, Selection)
    return result


def compile_expression(
    expression: str,
    *,
    columns: Collection[str] | None = None,
    functions: Mapping[str, SelectionFunction] | None = None,
) -> CompiledExpression:
    """Compile a numeric expression (e.g. a feature alias ``tau_dxy/tau_dxy_error``).

    Same language and checks as :func:`compile_selection`; the result returns the values
    instead of a mask.
    """
    return _compile(CompiledExpression, expression, columns, functions)
