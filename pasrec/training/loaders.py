"""Readers for the interaction-log layouts of SPEC section 3.

Every reader returns the same flat `Interactions` table of raw string ids and integer unix
seconds; filtering, ordering and re-indexing belong to `pasrec.training.preprocess`. Ratings are
read past but not kept: all interactions are implicit positive feedback.
"""

from __future__ import annotations

import gzip
import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import zip_longest
from pathlib import Path

import numpy as np

FORMATS = (
    "amazon-seq",
    "amazon-csv",
    "amazon-json",
    "movielens-udata",
    "movielens-dat",
    "movielens-csv",
    "recbole",
)

_FORMAT_HINT = f"known formats: {', '.join(FORMATS)}; pass --format to override detection"

# Where a single-file format's data lives when a directory is given, in the order detection
# tries them.
_DIR_PATTERNS: dict[str, tuple[str, ...]] = {
    "recbole": ("*.inter",),
    "movielens-udata": ("u.data",),
    "movielens-dat": ("ratings.dat",),
    "movielens-csv": ("ratings.csv",),
    "amazon-csv": ("ratings_*.csv", "ratings_*.csv.gz"),
    "amazon-json": ("*.json", "*.json.gz"),
}

_JSON_FIELDS = ("reviewerID", "asin", "unixReviewTime")


class DataFormatError(ValueError):
    """An input file does not have the layout its format requires.

    Messages about file content start with "<file name> line <n>:" (1-based) so that a
    user can open the file at the offending line.
    """


@dataclass
class Interactions:
    """One row per interaction, in file order."""

    users: np.ndarray
    items: np.ndarray
    timestamps: np.ndarray

    def __post_init__(self) -> None:
        if not len(self.users) == len(self.items) == len(self.timestamps):
            raise ValueError(
                f"column lengths differ: {len(self.users)} users, {len(self.items)} items, "
                f"{len(self.timestamps)} timestamps"
            )

    def __len__(self) -> int:
        return len(self.users)


def _fail(path: Path, line_no: int, message: str) -> DataFormatError:
    return DataFormatError(f"{path.name} line {line_no}: {message}")


def _first_undecodable_line(path: Path) -> int:
    # Text-mode readers decode in chunks, so the exception does not tell the line; a
    # byte-level rescan does, and only runs on the failure path.
    opener = gzip.open if path.name.endswith(".gz") else open
    line_no = 0
    with opener(path, "rb") as handle:
        for line_no, raw in enumerate(handle, 1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                return line_no
    return line_no


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """(1-based line number, line without its line break); streamed so large logs fit."""
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8-sig") as handle:
            for line_no, line in enumerate(handle, 1):
                yield line_no, line.rstrip("\n")
    except UnicodeDecodeError:
        raise _fail(path, _first_undecodable_line(path), "not valid UTF-8 text") from None
    except (gzip.BadGzipFile, EOFError) as exc:
        raise DataFormatError(f"{path.name}: not a readable gzip file ({exc})") from None


def _parse_timestamp(text: str, path: Path, line_no: int) -> int:
    """Unix seconds from integer or float text (RecBole writes floats)."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        raise _fail(path, line_no, f"non-numeric timestamp {text!r}") from None
    if not math.isfinite(value):
        raise _fail(path, line_no, f"non-finite timestamp {text!r}")
    return math.floor(value)


def _table(path: Path, users: list[str], items: list[str], times: list[int]) -> Interactions:
    if not users:
        raise DataFormatError(f"{path.name}: contains no interactions")
    return Interactions(
        users=np.array(users, dtype=object),
        items=np.array(items, dtype=object),
        timestamps=np.array(times, dtype=np.int64),
    )


def _read_delimited(
    path: Path,
    lines: Iterator[tuple[int, str]],
    sep: str | None,
    n_fields: int,
    columns: tuple[int, int, int],
) -> Interactions:
    """Rows of exactly `n_fields` fields; `columns` are the user, item and timestamp fields."""
    user_col, item_col, time_col = columns
    users: list[str] = []
    items: list[str] = []
    times: list[int] = []
    for line_no, line in lines:
        if not line or line.isspace():
            continue
        fields = line.split(sep)
        if len(fields) != n_fields:
            raise _fail(path, line_no, f"expected {n_fields} fields, got {len(fields)}")
        user, item = fields[user_col], fields[item_col]
        if not user or not item:
            raise _fail(path, line_no, "empty user or item id")
        users.append(user)
        items.append(item)
        try:
            times.append(int(fields[time_col]))
        except ValueError:
            times.append(_parse_timestamp(fields[time_col], path, line_no))
    return _table(path, users, items, times)


def _header_columns(
    path: Path, lines: Iterator[tuple[int, str]], sep: str, names: tuple[str, str, str]
) -> tuple[int, tuple[int, int, int]]:
    """Number of fields and positions of the named user, item and timestamp columns.

    RecBole headers carry a type suffix ("user_id:token"), so only the part before ':' is
    compared.
    """
    for line_no, line in lines:
        if not line or line.isspace():
            continue
        header = [field.split(":", 1)[0].strip() for field in line.split(sep)]
        missing = [name for name in names if name not in header]
        if missing:
            raise _fail(
                path,
                line_no,
                f"header lacks column(s) {', '.join(missing)} (header: {', '.join(header)})",
            )
        user_col, item_col, time_col = (header.index(name) for name in names)
        return len(header), (user_col, item_col, time_col)
    raise DataFormatError(f"{path.name}: empty file, expected a header line")


def _read_recbole(path: Path) -> Interactions:
    lines = _lines(path)
    n_fields, columns = _header_columns(path, lines, "\t", ("user_id", "item_id", "timestamp"))
    return _read_delimited(path, lines, "\t", n_fields, columns)


def _read_movielens_csv(path: Path) -> Interactions:
    lines = _lines(path)
    n_fields, columns = _header_columns(path, lines, ",", ("userId", "movieId", "timestamp"))
    return _read_delimited(path, lines, ",", n_fields, columns)


def _read_movielens_udata(path: Path) -> Interactions:
    # u.data is tab separated; splitting on any whitespace also accepts space-separated copies.
    return _read_delimited(path, _lines(path), None, 4, (0, 1, 3))


def _read_movielens_dat(path: Path) -> Interactions:
    return _read_delimited(path, _lines(path), "::", 4, (0, 1, 3))


def _read_amazon_csv(path: Path) -> Interactions:
    return _read_delimited(path, _lines(path), ",", 4, (0, 1, 3))


def _read_amazon_json(path: Path) -> Interactions:
    users: list[str] = []
    items: list[str] = []
    times: list[int] = []
    for line_no, line in _lines(path):
        if not line or line.isspace():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise _fail(path, line_no, f"invalid JSON ({exc.msg})") from None
        if not isinstance(record, dict):
            raise _fail(path, line_no, "expected a JSON object")
        missing = [field for field in _JSON_FIELDS if field not in record]
        if missing:
            raise _fail(path, line_no, f"missing field(s) {', '.join(missing)}")
        user, item, stamp = (record[field] for field in _JSON_FIELDS)
        users.append(str(user))
        items.append(str(item))
        times.append(
            stamp
            if isinstance(stamp, int) and not isinstance(stamp, bool)
            else _parse_timestamp(str(stamp), path, line_no)
        )
    return _table(path, users, items, times)


def _read_amazon_seq(item_path: Path, time_path: Path) -> Interactions:
    users: list[str] = []
    items: list[str] = []
    times: list[int] = []
    pairs = zip_longest(_lines(item_path), _lines(time_path), fillvalue=(0, ""))
    for (item_no, item_line), (time_no, time_line) in pairs:
        item_fields = item_line.split()
        time_fields = time_line.split()
        line_no = max(item_no, time_no)
        if not item_fields and not time_fields:
            continue
        if not time_fields:
            raise _fail(
                time_path,
                line_no,
                f"no timestamps for user {item_fields[0]!r} of {item_path.name} line {line_no}",
            )
        if not item_fields:
            raise _fail(
                item_path,
                line_no,
                f"no items for user {time_fields[0]!r} of {time_path.name} line {line_no}",
            )
        user = item_fields[0]
        if time_fields[0] != user:
            raise _fail(
                time_path,
                line_no,
                f"user {time_fields[0]!r} but {item_path.name} line {line_no} has user {user!r}",
            )
        if len(time_fields) != len(item_fields):
            raise _fail(
                time_path,
                line_no,
                f"{len(time_fields) - 1} timestamps for user {user!r} but {item_path.name} "
                f"line {line_no} has {len(item_fields) - 1} items",
            )
        stamps = time_fields[1:]
        try:
            times.extend([int(stamp) for stamp in stamps])
        except ValueError:
            times.extend([_parse_timestamp(stamp, time_path, line_no) for stamp in stamps])
        users.extend([user] * len(stamps))
        items.extend(item_fields[1:])
    return _table(item_path, users, items, times)


_READERS: dict[str, Callable[[Path], Interactions]] = {
    "amazon-csv": _read_amazon_csv,
    "amazon-json": _read_amazon_json,
    "movielens-udata": _read_movielens_udata,
    "movielens-dat": _read_movielens_dat,
    "movielens-csv": _read_movielens_csv,
    "recbole": _read_recbole,
}


def _seq_names(directory: Path) -> list[str]:
    """Dataset names with both <Name>_item.txt and <Name>_time.txt in `directory`."""
    return sorted(
        path.name.removesuffix("_item.txt")
        for path in directory.glob("*_item.txt")
        if (directory / path.name.replace("_item.txt", "_time.txt")).is_file()
    )


def _seq_pair(path: Path, name: str | None) -> tuple[Path, Path]:
    if path.is_file():
        for suffix in ("_item.txt", "_time.txt"):
            if path.name.endswith(suffix):
                base = path.name.removesuffix(suffix)
                break
        else:
            raise DataFormatError(
                f"{path.name}: an amazon-seq file is named <Name>_item.txt or <Name>_time.txt"
            )
        directory = path.parent
        names = [base] if base in _seq_names(directory) else []
    else:
        directory = path
        names = _seq_names(directory)
        base = name if name is not None else (names[0] if len(names) == 1 else "")
    if not names:
        raise DataFormatError(f"{path}: no <Name>_item.txt with a matching <Name>_time.txt")
    if base not in names:
        listed = ", ".join(names)
        if name is None:
            raise DataFormatError(
                f"{path}: several amazon-seq datasets ({listed}); pick one by name"
            )
        raise DataFormatError(f"{path}: no amazon-seq dataset named {name!r} (found: {listed})")
    return directory / f"{base}_item.txt", directory / f"{base}_time.txt"


def _data_file(directory: Path, format: str | None, name: str | None) -> Path:
    """The one file inside `directory` that holds the data of `format` (any when None)."""
    formats = [format] if format is not None else list(_DIR_PATTERNS)
    for fmt in formats:
        found = sorted({hit for pattern in _DIR_PATTERNS[fmt] for hit in directory.glob(pattern)})
        if fmt == "recbole" and name is not None:
            found = [hit for hit in found if hit.name == f"{name}.inter"]
        if len(found) == 1:
            return found[0]
        if found:
            listed = ", ".join(hit.name for hit in found)
            raise DataFormatError(f"{directory}: several candidate files ({listed}); pass one")
    raise DataFormatError(f"{directory}: no interaction file found; {_FORMAT_HINT}")


def _first_line(path: Path) -> str:
    for _, line in _lines(path):
        if line and not line.isspace():
            return line
    raise DataFormatError(f"{path.name}: empty file")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _detect_file(path: Path) -> str:
    name = path.name.removesuffix(".gz")
    if name.endswith(("_item.txt", "_time.txt")):
        return "amazon-seq"
    if name.endswith(".inter"):
        return "recbole"
    line = _first_line(path)
    if name.endswith(".json"):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            record = None
        if isinstance(record, dict) and all(field in record for field in _JSON_FIELDS):
            return "amazon-json"
    fields = line.split("\t")
    if name == "u.data" or (len(fields) == 4 and all(field.strip().isdigit() for field in fields)):
        return "movielens-udata"
    if len(line.split("::")) == 4:
        return "movielens-dat"
    fields = line.split(",")
    if fields[:2] == ["userId", "movieId"] and "timestamp" in fields:
        return "movielens-csv"
    if len(fields) == 4 and _is_number(fields[2]) and _is_number(fields[3]):
        return "amazon-csv"
    raise DataFormatError(f"{path.name}: cannot tell the data format; {_FORMAT_HINT}")


def detect_format(path: Path) -> str:
    """The format of a data file or directory, judged from file names and the first line."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file or directory: {path}")
    if path.is_dir():
        if _seq_names(path):
            return "amazon-seq"
        path = _data_file(path, None, None)
    return _detect_file(path)


def load_interactions(
    path: str | Path, format: str | None = None, name: str | None = None
) -> Interactions:
    """Read an interaction log in one of `FORMATS` (detected when `format` is None).

    `path` is a file or a directory. `name` picks <name>_item.txt/<name>_time.txt or
    <name>.inter inside a directory holding several datasets; it is not needed otherwise.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file or directory: {path}")
    if format is None:
        if path.is_dir() and name is not None and (path / f"{name}.inter").is_file():
            format = "recbole"
        else:
            format = detect_format(path)
    elif format not in FORMATS:
        raise ValueError(f"unknown format {format!r}; {_FORMAT_HINT}")
    if format == "amazon-seq":
        return _read_amazon_seq(*_seq_pair(path, name))
    file = path if path.is_file() else _data_file(path, format, name)
    return _READERS[format](file)
