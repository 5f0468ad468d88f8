"""The one strict reader of documents (plans, trials, patients) and packaged data files, and the
one writer of output folders.

Every YAML, JSON or CSV file neuromod reads goes through :func:`read_document`,
:func:`read_data_yaml` or :func:`read_csv`. They refuse, with one line naming the file (and the
line when known):

* files larger than :data:`MAX_DOCUMENT_BYTES` (a plan or trial is a few kilobytes; the cap
  bounds the time and memory spent parsing before any validation);
* bytes that are not UTF-8 text;
* malformed YAML or JSON, documents nested deeper than the parser can follow;
* duplicate mapping keys (YAML and JSON both let the last one win silently; here it is an error);
* YAML anchors and aliases in documents (a few aliases expand to millions of nodes), and YAML
  nested deeper than :data:`MAX_YAML_DEPTH`.

YAML scalars follow YAML 1.2 for numbers as well: ``1e-3`` is the number 0.001 (PyYAML's
YAML 1.1 resolver would make it the string ``"1e-3"``), so that strict schemas downstream can
refuse strings without refusing numbers written in exponent form.

Output folders (:func:`check_output_folder`, :func:`atomic_output_folder`) are checked before
any work starts and filled in a temporary sibling folder that is moved into place only when
everything is written, so a failure leaves nothing behind.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

#: Largest document or data file read, in bytes (1 MiB). assumption: the largest shipped file
#: (a published-data CSV) is under 100 kB and a plan or trial file a few kB; a cap bounds the
#: parse cost of any input before validation.
MAX_DOCUMENT_BYTES = 1_048_576


class DocumentError(ValueError):
    """A file that cannot be read as a document; the message is one line naming the file."""


# -- YAML -------------------------------------------------------------------------------
#: YAML 1.2 floats that YAML 1.1 leaves as strings: exponent without a dot (``1e-3``, ``2E5``).
_YAML12_FLOAT = re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$")


#: Deepest nesting of lists and mappings a YAML document may have (a plan needs 4 levels).
#: assumption: bounds the parser's recursion (a million ``[`` would otherwise exhaust the stack).
MAX_YAML_DEPTH = 32

#: libyaml's C parser when installed (about 20x faster than the pure-Python one), else PyYAML's.
_BaseLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class StrictLoader(_BaseLoader):  # type: ignore[misc, valid-type]
    """A SafeLoader that refuses duplicate mapping keys and reads YAML 1.2 exponent floats as
    numbers (aliases and depth are checked beforehand by :func:`_scan_events`)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        if not isinstance(node, yaml.MappingNode):
            raise yaml.constructor.ConstructorError(
                None, None, f"expected a mapping node, but found {node.id}", node.start_mark)
        self.flatten_mapping(node)
        mapping: dict[Any, Any] = {}
        first_line: dict[Any, int] = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                hash(key)
            except TypeError:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping", node.start_mark, "found an unhashable key", key_node.start_mark
                ) from None
            if key in mapping:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping", node.start_mark,
                    f"duplicate key {key!r} (first at line {first_line[key]})", key_node.start_mark,
                )
            first_line[key] = key_node.start_mark.line + 1
            mapping[key] = self.construct_object(value_node, deep=deep)
        return mapping


StrictLoader.add_implicit_resolver("tag:yaml.org,2002:float", _YAML12_FLOAT, list("-+0123456789"))


def _scan_events(text: str, source: str, *, aliases: bool) -> None:
    """Refuse, from the parser's event stream (no recursion), documents nested deeper than
    :data:`MAX_YAML_DEPTH` and, unless ``aliases``, any alias (a few aliases can expand to
    millions of nodes)."""
    depth = 0
    for event in yaml.parse(text, Loader=_BaseLoader):
        if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            depth += 1
            if depth > MAX_YAML_DEPTH:
                raise DocumentError(f"{source}: malformed YAML: nested deeper than {MAX_YAML_DEPTH} levels "
                                    f"at line {event.start_mark.line + 1}")
        elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            depth -= 1
        elif not aliases and (isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None)):
            raise DocumentError(f"{source}: malformed YAML: anchors and aliases (&name, *name) are not allowed "
                                f"in documents, at line {event.start_mark.line + 1}")


def _yaml_problem(error: yaml.YAMLError) -> str:
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{problem}{where}".replace("\n", " ")


def parse_yaml(text: str, source: str, *, document: bool = True) -> Any:
    """Parse YAML text strictly (see the module docstring); errors name ``source``."""
    try:
        _scan_events(text, source, aliases=not document)
        return yaml.load(text, Loader=StrictLoader)  # a SafeLoader subclass
    except yaml.YAMLError as error:
        raise DocumentError(f"{source}: malformed YAML: {_yaml_problem(error)}") from None
    except RecursionError:
        raise DocumentError(f"{source}: malformed YAML: nested too deeply") from None


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"duplicate key {key!r}")
        result[key] = value
    return result


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_json(text: str, source: str) -> Any:
    """Parse JSON text strictly: duplicate keys and NaN/Infinity refused; errors name ``source``."""
    try:
        return json.loads(text, object_pairs_hook=_unique_pairs, parse_constant=_refuse_constant)
    except json.JSONDecodeError as error:
        raise DocumentError(
            f"{source}: malformed JSON: {error.msg} at line {error.lineno}, column {error.colno}"
        ) from None
    except ValueError as error:
        raise DocumentError(f"{source}: malformed JSON: {error}") from None
    except RecursionError:
        raise DocumentError(f"{source}: malformed JSON: nested too deeply") from None


def decode_text(data: bytes, source: str) -> str:
    """``data`` as UTF-8 text (a leading byte-order mark is dropped), or a DocumentError."""
    if len(data) > MAX_DOCUMENT_BYTES:
        raise DocumentError(f"{source}: file is larger than {MAX_DOCUMENT_BYTES} bytes (the document size limit)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise DocumentError(
            f"{source}: not UTF-8 text (byte 0x{data[error.start]:02x} at line {line}); save the file as UTF-8"
        ) from None


def read_bytes(path: str | Path, source: str | None = None) -> bytes:
    """The bytes of ``path``, at most :data:`MAX_DOCUMENT_BYTES` (read no further)."""
    path = Path(path)
    source = source or str(path)
    try:
        if path.is_dir():
            raise DocumentError(f"{source}: is a folder, not a file")
        with path.open("rb") as handle:
            data = handle.read(MAX_DOCUMENT_BYTES + 1)
    except OSError as error:
        raise DocumentError(f"{source}: cannot read: {error.strerror or error}") from None
    if len(data) > MAX_DOCUMENT_BYTES:
        raise DocumentError(f"{source}: file is larger than {MAX_DOCUMENT_BYTES} bytes (the document size limit)")
    return data


def read_document(path: str | Path, kind: str = "document") -> Any:
    """Read a user's YAML or JSON document (JSON when the name ends in ``.json``) strictly.

    kind: what the file is ("plan file", "trial file", ...), used to start error messages.
    """
    path = Path(path)
    source = f"{kind}: {path}"
    text = decode_text(read_bytes(path, source), source)
    if path.suffix.lower() == ".json":
        return parse_json(text, source)
    return parse_yaml(text, source)


# -- packaged data files ----------------------------------------------------------------
def _data_text(name: str) -> str:
    source = f"data file: {name}"
    resource = resources.files("neuromod").joinpath("data", name)
    try:
        data = resource.read_bytes()
    except OSError as error:
        raise DocumentError(f"{source}: cannot read: {error.strerror or error}") from None
    return decode_text(data, source)


def data_file_exists(name: str) -> bool:
    """Whether the packaged data file ``neuromod/data/<name>`` exists."""
    return resources.files("neuromod").joinpath("data", name).is_file()


def read_data_yaml(name: str) -> Any:
    """A packaged YAML data file (``neuromod/data/<name>``), read strictly."""
    return parse_yaml(_data_text(name), f"data file: {name}", document=False)


def read_csv(name: str) -> list[dict[str, str]]:
    """Rows of a packaged CSV file as dictionaries of strings (strict UTF-8, unique header names,
    every row as long as the header)."""
    return read_csv_text(_data_text(name), name)


def read_csv_text(text: str, name: str) -> list[dict[str, str]]:
    """Rows of CSV ``text`` (the data file ``name``), checked as :func:`read_csv` says."""
    source = f"data file: {name}"
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:
        raise DocumentError(f"{source}: empty CSV file") from None
    if len(set(header)) != len(header):
        duplicates = sorted({h for h in header if header.count(h) > 1})
        raise DocumentError(f"{source}: duplicate column(s) {', '.join(duplicates)}")
    rows = []
    for row in reader:
        if not row:
            continue
        if len(row) != len(header):
            raise DocumentError(
                f"{source}: line {reader.line_num} has {len(row)} fields, the header {len(header)}"
            )
        rows.append(dict(zip(header, row)))
    return rows


# -- output folders ---------------------------------------------------------------------
def check_output_folder(path: str | Path, option: str = "--out") -> Path:
    """Refuse, before any work, an output folder that cannot be created: ``path`` is an existing
    file, or its parent folder is missing or not writable. Returns the path."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise DocumentError(f"{option}: {path} is a file; give a folder (created if missing)")
    if path.is_dir():
        if not os.access(path, os.W_OK | os.X_OK):
            raise DocumentError(f"{option}: cannot write into {path}")
        return path
    parent = path.absolute().parent
    if not parent.is_dir():
        raise DocumentError(f"{option}: the parent folder {parent} does not exist; create it first")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise DocumentError(f"{option}: cannot write into {parent}")
    return path


def check_output_file(path: str | Path, option: str = "--out") -> Path:
    """Refuse, before any work, an output file that cannot be written: ``path`` is a folder, or
    its parent folder is missing or not writable."""
    path = Path(path)
    if path.is_dir():
        raise DocumentError(f"{option}: {path} is a folder; give a file name")
    parent = path.absolute().parent
    if not parent.is_dir():
        raise DocumentError(f"{option}: the parent folder {parent} does not exist; create it first")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise DocumentError(f"{option}: cannot write into {parent}")
    return path


def _move_into(source: Path, target: Path) -> None:
    """Move the contents of folder ``source`` into folder ``target`` (each file replaced atomically)."""
    for entry in sorted(source.iterdir()):
        destination = target / entry.name
        if entry.is_dir() and destination.is_dir():
            _move_into(entry, destination)
        else:
            if destination.is_dir():
                shutil.rmtree(destination)
            os.replace(entry, destination)


@contextmanager
def atomic_output_folder(path: str | Path, option: str = "--out") -> Iterator[Path]:
    """Yield a temporary folder to write into; on success its contents move into ``path``, on any
    failure it is removed and ``path`` is left as it was.

    A new ``path`` is created by one rename of a temporary sibling folder; an existing folder is
    staged in a hidden temporary folder inside it, whose files are then moved in (each by an
    atomic rename), keeping the folder's other files."""
    path = check_output_folder(path, option)
    existing = path.is_dir()
    where = path if existing else path.absolute().parent
    staging = Path(tempfile.mkdtemp(prefix=f".{path.absolute().name}.", suffix=".partial", dir=where))
    try:
        yield staging
        if existing:
            _move_into(staging, path)
        else:
            os.replace(staging, path)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


@contextmanager
def atomic_output_file(path: str | Path, option: str = "--out") -> Iterator[Path]:
    """Yield a temporary sibling file of ``path`` to write; renamed onto ``path`` on success,
    removed on failure."""
    path = check_output_file(path, option)
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.absolute().parent)
    os.close(handle)
    staging = Path(name)
    try:
        yield staging
        os.replace(staging, path)
    finally:
        if staging.exists():
            staging.unlink()
