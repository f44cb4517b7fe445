"""Data groups: which dataset directories feed shuffle & merge, and which tau types each keeps.

Two spellings of the same thing are read: the original TauMLTools ``.cfg`` format (reference
spec §1.4, ``PropertyConfigReader``), so existing configs keep working, and a YAML file for new
ones. Both go through the same validation, so a mistake is reported the same way whichever
format the user wrote.

Groups are always returned in alphabetical order of name (byte order, as the original's
``std::map<std::string, …>``): everything downstream that iterates groups — hashes, tables,
random streams — then does not depend on the order of lines in the file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from taucoffea.errors import ConfigError
from taucoffea.physics.tautypes import TAU_TYPE_NAMES

__all__ = ["ALLOWED_KEYS", "DataGroup", "group_fileset", "match_files", "read_datagroups"]

#: Keys a group may have. ``mix_p`` is only used by the SimpleMergeMix-style mixer and
#: ``sample_type`` appears in the original ``dy_vs_emb_inputs.cfg``; both are kept in ``extra``.
ALLOWED_KEYS: tuple[str, ...] = ("dir", "file", "types", "mix_p", "sample_type")
_REQUIRED_KEYS = ("dir", "file", "types")
# Group names end up in file names (``<group>.root``) and correctionlib categories.
_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]*")
# One ``key=value`` token; the value is either double-quoted (may contain blanks) or bare.
_TOKEN_RE = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)=(?:"([^"]*)"|([^\s"]*))(?=\s|$)')


@dataclass(frozen=True)
class DataGroup:
    """One data group: dataset directories (``dir`` regex) and files (``file`` regex) to read.

    ``dir`` is full-matched against the dataset directory name (the last path component
    before the file name) and ``file`` against the file's base name. ``types`` are tau-type
    names in the order written. ``extra`` holds the optional keys (``mix_p`` as float).
    Hashable by name and regexes so it can key dictionaries.
    """

    name: str
    dir: str
    file: str
    types: tuple[str, ...]
    extra: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @property
    def mix_p(self) -> float | None:
        """The ``mix_p`` weight if the config gave one."""
        value = self.extra.get("mix_p")
        return None if value is None else float(value)

    def matches(self, dataset_dir: str, file_name: str) -> bool:
        """Full-match both regexes, as ``EntryDesc`` does with ``std::regex_match``."""
        return (
            re.fullmatch(self.dir, dataset_dir) is not None
            and re.fullmatch(self.file, file_name) is not None
        )


def read_datagroups(path: str | os.PathLike[str]) -> list[DataGroup]:
    """Read and validate a data-group config (``.yaml``/``.yml`` as YAML, anything else as ``.cfg``).

    Returns the groups sorted by name. Every problem (syntax, duplicate or unknown key,
    unknown tau type, bad regex, duplicate group) raises :class:`ConfigError` naming the file
    and, where known, the line.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as err:
        raise ConfigError(f"cannot read data-group config '{path}': {err}") from err
    if path.suffix.lower() in (".yaml", ".yml"):
        raw = _parse_yaml(text, path)
    else:
        raw = _parse_cfg(text, path)
    groups = [_make_group(name, props, f"{path}{where}") for name, (props, where) in raw.items()]
    if not groups:
        raise ConfigError(f"data-group config '{path}' defines no groups")
    return sorted(groups, key=lambda g: g.name)


# ----------------------------------------------------------------------------------- .cfg


def _logical_lines(text: str) -> Iterable[tuple[int, str]]:
    """Join ``\\``-continued physical lines; yield (first line number, joined text).

    Continuation is applied before comments are recognised (as in C line splicing), so
    commenting out the first line of a continued item comments out the whole item.
    """
    buffer: list[str] = []
    start = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if not buffer:
            start = number
        stripped = line.rstrip()
        if stripped.endswith("\\"):
            buffer.append(stripped[:-1])
            continue
        buffer.append(line)
        yield start, " ".join(buffer)
        buffer = []
    if buffer:  # a file ending in a continuation: take what there is
        yield start, " ".join(buffer)


def _parse_cfg(text: str, path: Path) -> dict[str, tuple[dict[str, str], str]]:
    items: dict[str, tuple[dict[str, str], str]] = {}
    first_line: dict[str, int] = {}
    for number, line in _logical_lines(text):
        body = line.strip()
        if not body or body.startswith("#"):
            continue
        where = f"{path}:{number}"
        name, sep, rest = body.partition(":")
        name = name.strip()
        if not sep or not name:
            raise ConfigError(f"{where}: expected '<name>: key=value ...', got {body!r}")
        if name in items:
            raise ConfigError(
                f"{where}: duplicate data group {name!r} (first defined on line "
                f"{first_line[name]}, again on line {number})"
            )
        props: dict[str, str] = {}
        pos = 0
        rest = rest.rstrip()
        while pos < len(rest):
            if not rest[pos:].strip():
                break
            m = _TOKEN_RE.match(rest, pos)
            if m is None:
                bad = rest[pos:].split()[0]
                raise ConfigError(
                    f"{where}: group {name!r}: cannot parse {bad!r}; expected key=value or "
                    'key="value" (only whole lines starting with # are comments)'
                )
            key = m.group(1)
            value = m.group(2) if m.group(2) is not None else m.group(3)
            if key in props:
                raise ConfigError(f"{where}: group {name!r}: key {key!r} given twice")
            props[key] = value
            pos = m.end()
        items[name] = (props, f":{number}")
        first_line[name] = number
    return items


# ----------------------------------------------------------------------------------- YAML


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate mapping keys (plain PyYAML keeps the last one)."""


def _construct_unique_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        line = key_node.start_mark.line + 1
        if key in seen:
            raise ConfigError(
                f"duplicate key {key!r} (first on line {seen[key]}, again on line {line})"
            )
        seen[key] = line
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping
)


def _parse_yaml(text: str, path: Path) -> dict[str, tuple[dict[str, Any], str]]:
    try:
        doc = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - SafeLoader subclass
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: invalid YAML: {err}") from None
    if not isinstance(doc, dict) or set(doc) != {"groups"}:
        keys = sorted(doc) if isinstance(doc, dict) else type(doc).__name__
        raise ConfigError(f"{path}: expected a mapping with the single key 'groups', got {keys}")
    groups = doc["groups"]
    if not isinstance(groups, dict):
        raise ConfigError(f"{path}: 'groups' must map group names to settings")
    out: dict[str, tuple[dict[str, Any], str]] = {}
    for name, props in groups.items():
        if not isinstance(props, dict):
            raise ConfigError(f"{path}: group {name!r} must be a mapping of settings")
        out[str(name)] = (props, "")
    return out


# ----------------------------------------------------------------------------- validation


def _make_group(name: str, props: Mapping[str, Any], where: str) -> DataGroup:
    if not _NAME_RE.fullmatch(name):
        raise ConfigError(
            f"{where}: invalid group name {name!r}: use letters, digits, '_', '.', '-'"
        )
    for key in props:
        if key not in ALLOWED_KEYS:
            raise ConfigError(
                f"{where}: group {name!r}: unknown key {key!r}; allowed keys are "
                f"{', '.join(ALLOWED_KEYS)}"
            )
    for key in _REQUIRED_KEYS:
        if key not in props or props[key] in (None, "", []):
            raise ConfigError(f"{where}: group {name!r}: missing or empty key {key!r}")
    regexes = {}
    for key in ("dir", "file"):
        value = props[key]
        if not isinstance(value, str):
            raise ConfigError(f"{where}: group {name!r}: {key} must be a string regex, got {value!r}")
        try:
            re.compile(value)
        except re.error as err:
            raise ConfigError(f"{where}: group {name!r}: invalid {key} regex {value!r}: {err}") from None
        regexes[key] = value
    types = _parse_types(props["types"], name, where)
    extra: dict[str, Any] = {}
    if "mix_p" in props:
        try:
            mix_p = float(props["mix_p"])
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: group {name!r}: mix_p={props['mix_p']!r} is not a number") from None
        if not mix_p >= 0 or mix_p == float("inf"):
            raise ConfigError(f"{where}: group {name!r}: mix_p={props['mix_p']!r} must be finite and >= 0")
        extra["mix_p"] = mix_p
    if "sample_type" in props:
        extra["sample_type"] = str(props["sample_type"])
    return DataGroup(name, regexes["dir"], regexes["file"], types, MappingProxyType(extra))


def _parse_types(value: Any, name: str, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        items = [t.strip() for t in value.split(",")]
    elif isinstance(value, list | tuple):
        items = [str(t).strip() for t in value]
    else:
        raise ConfigError(f"{where}: group {name!r}: types must be a list or comma list, got {value!r}")
    if not items or any(not t for t in items):
        raise ConfigError(f"{where}: group {name!r}: empty entry in types {value!r}")
    for t in items:
        if t not in TAU_TYPE_NAMES:
            raise ConfigError(
                f"{where}: group {name!r}: unknown tau type {t!r}; allowed are "
                f"{', '.join(TAU_TYPE_NAMES)}"
            )
    if len(set(items)) != len(items):
        raise ConfigError(f"{where}: group {name!r}: a tau type is listed twice in {value!r}")
    return tuple(items)


# ------------------------------------------------------------------------------- matching


def match_files(
    groups: Iterable[DataGroup], files_or_root_dir: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]
) -> dict[str, list[tuple[str, str]]]:
    """Assign input files to groups: ``{group name: [(dataset_dir_name, path), …]}``.

    ``files_or_root_dir`` is either a list of file paths, or a directory that is walked
    recursively (sorted, hidden entries skipped) for ``<dataset_dir>/<file>`` files. A file is
    matched by full-matching ``dir`` on its parent directory's name and ``file`` on its base
    name; files no group wants are ignored, as in the original. The result is keyed by group
    name in alphabetical order and keeps the given (or sorted) file order within a group.

    Raises :class:`ConfigError` if one file is claimed by two groups (it would be sampled
    twice) or a group matches no file (the original throws too).
    """
    groups = sorted(groups, key=lambda g: g.name)
    files = _list_files(files_or_root_dir)
    out: dict[str, list[tuple[str, str]]] = {g.name: [] for g in groups}
    owner: dict[str, str] = {}
    for path in files:
        p = Path(path)
        dataset_dir = p.parent.name
        for g in groups:
            if g.matches(dataset_dir, p.name):
                if path in owner:
                    raise ConfigError(
                        f"file '{path}' is matched by two data groups, {owner[path]!r} and "
                        f"{g.name!r}; make their dir/file regexes exclusive"
                    )
                owner[path] = g.name
                out[g.name].append((dataset_dir, path))
    for g in groups:
        if not out[g.name]:
            raise ConfigError(
                f"data group {g.name!r} matches no input file (dir={g.dir!r}, file={g.file!r})"
            )
    return out


def group_fileset(matched: Mapping[str, Iterable[tuple[str, str]]]) -> tuple[dict[str, list[str]], dict[str, str]]:
    """The coffea fileset of :func:`match_files`' result, ``{dataset: [absolute paths]}``, and
    the group of each path: coffea runs by dataset, the sampling draws by group."""
    fileset: dict[str, list[str]] = {}
    file_groups: dict[str, str] = {}
    for group, files in matched.items():
        for ds, path in files:
            fileset.setdefault(ds, []).append(os.path.abspath(path))
            file_groups[os.path.abspath(path)] = group
    return fileset, file_groups


def _list_files(
    files_or_root_dir: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
) -> list[str]:
    if isinstance(files_or_root_dir, str | os.PathLike):
        root = Path(files_or_root_dir)
        if not root.is_dir():
            raise ConfigError(f"input directory '{root}' does not exist or is not a directory")
        found = []
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            found.extend(
                os.path.join(dirpath, f) for f in sorted(filenames) if not f.startswith(".")
            )
        return found
    return [os.fspath(f) for f in files_or_root_dir]
