"""Loaders: every format from a small written file, detection, malformed input, real data."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
from data_sources import reference_data

from pasrec.training.loaders import FORMATS, DataFormatError, detect_format, load_interactions

# Amazon ids with leading zeros must survive as strings; two rows share a timestamp.
ROWS = [
    ("A3UJ", "0205616461", 5, 1_356_998_400),
    ("A3UJ", "B00004", 4, 1_357_084_800),
    ("7", "0205616461", 3, 1_357_084_800),
    ("7", "B00099", 1, 1_300_000_000),
]


def _write_amazon_seq(directory: Path) -> Path:
    users = dict.fromkeys(user for user, _, _, _ in ROWS)
    item_lines = [" ".join([u] + [i for user, i, _, _ in ROWS if user == u]) for u in users]
    time_lines = [" ".join([u] + [str(t) for user, _, _, t in ROWS if user == u]) for u in users]
    (directory / "Beauty_item.txt").write_text("\n".join(item_lines) + "\n")
    (directory / "Beauty_time.txt").write_text("\n".join(time_lines) + "\n")
    return directory / "Beauty_item.txt"


def _write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines))
    return path


def _write_amazon_json(directory: Path) -> Path:
    path = directory / "reviews_Beauty_5.json.gz"
    records = [
        {
            "reviewerID": u,
            "asin": i,
            "overall": float(r),
            "reviewText": "a,b\tc",
            "unixReviewTime": t,
        }
        for u, i, r, t in ROWS
    ]
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.writelines(json.dumps(record) + "\n" for record in records)
    return path


def _write(fmt: str, directory: Path) -> Path:
    """Write ROWS in `fmt` into `directory` and return the data file."""
    if fmt == "amazon-seq":
        return _write_amazon_seq(directory)
    if fmt == "amazon-json":
        return _write_amazon_json(directory)
    if fmt == "amazon-csv":
        return _write_lines(
            directory / "ratings_Beauty.csv", [f"{u},{i},{r}.0,{t}" for u, i, r, t in ROWS]
        )
    if fmt == "movielens-udata":
        return _write_lines(directory / "u.data", [f"{u}\t{i}\t{r}\t{t}" for u, i, r, t in ROWS])
    if fmt == "movielens-dat":
        return _write_lines(
            directory / "ratings.dat", [f"{u}::{i}::{r}::{t}" for u, i, r, t in ROWS]
        )
    if fmt == "movielens-csv":
        return _write_lines(
            directory / "ratings.csv",
            ["userId,movieId,rating,timestamp"] + [f"{u},{i},{r}.5,{t}" for u, i, r, t in ROWS],
        )
    # RecBole: columns in a non-default order and float timestamps, as RecBole writes them.
    return _write_lines(
        directory / "tiny.inter",
        ["item_id:token\trating:float\tuser_id:token\ttimestamp:float"]
        + [f"{i}\t{r}\t{u}\t{t}.0" for u, i, r, t in ROWS],
    )


def _assert_rows(inter: object) -> None:
    assert len(inter) == len(ROWS)
    assert inter.users.dtype == object and inter.items.dtype == object
    assert inter.timestamps.dtype == np.int64
    assert list(inter.users) == [u for u, _, _, _ in ROWS]
    assert list(inter.items) == [i for _, i, _, _ in ROWS]
    assert inter.timestamps.tolist() == [t for _, _, _, t in ROWS]


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_format_loads_explicitly_and_by_detection(fmt: str, tmp_path: Path) -> None:
    path = _write(fmt, tmp_path)
    assert detect_format(path) == fmt
    assert detect_format(tmp_path) == fmt
    _assert_rows(load_interactions(path, format=fmt))
    _assert_rows(load_interactions(path))
    _assert_rows(load_interactions(str(tmp_path)))


def test_amazon_seq_detected_from_the_time_file(tmp_path: Path) -> None:
    _write_amazon_seq(tmp_path)
    time_file = tmp_path / "Beauty_time.txt"
    assert detect_format(time_file) == "amazon-seq"
    _assert_rows(load_interactions(time_file))


def test_movielens_layouts_detected_by_content_under_other_names(tmp_path: Path) -> None:
    base = _write_lines(tmp_path / "u1.base", ["1\t2\t3\t881250949", "4\t5\t1\t881250950"])
    dat = _write_lines(tmp_path / "ml10m.dat", ["1::122::5::838985046"])
    csv = _write_lines(tmp_path / "ml25m.csv", ["userId,movieId,rating,timestamp", "1,2,3.5,99"])
    assert detect_format(base) == "movielens-udata"
    assert detect_format(dat) == "movielens-dat"
    assert detect_format(csv) == "movielens-csv"
    assert load_interactions(base).timestamps.tolist() == [881250949, 881250950]


def test_unknown_format_names_the_formats_and_the_override(tmp_path: Path) -> None:
    path = _write_lines(tmp_path / "notes.txt", ["hello world"])
    with pytest.raises(DataFormatError) as err:
        detect_format(path)
    assert "--format" in str(err.value)
    assert all(fmt in str(err.value) for fmt in FORMATS)
    with pytest.raises(DataFormatError, match="--format"):
        load_interactions(tmp_path)


def test_unknown_format_argument_is_rejected(tmp_path: Path) -> None:
    path = _write("movielens-udata", tmp_path)
    with pytest.raises(ValueError, match="unknown format 'parquet'"):
        load_interactions(path, format="parquet")


def test_missing_path_is_a_file_not_found_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_interactions(tmp_path / "absent.csv")


def test_amazon_seq_directory_with_several_datasets_needs_a_name(tmp_path: Path) -> None:
    _write_amazon_seq(tmp_path)
    (tmp_path / "Sports_item.txt").write_text("u 1 2\n")
    (tmp_path / "Sports_time.txt").write_text("u 86400 172800\n")
    with pytest.raises(DataFormatError) as err:
        load_interactions(tmp_path)
    assert "Beauty" in str(err.value) and "Sports" in str(err.value)
    sports = load_interactions(tmp_path, name="Sports")
    assert sports.items.tolist() == ["1", "2"]
    assert sports.timestamps.tolist() == [86400, 172800]
    _assert_rows(load_interactions(tmp_path, name="Beauty"))
    with pytest.raises(DataFormatError, match="'Toys'"):
        load_interactions(tmp_path, name="Toys")


def test_recbole_directory_with_several_inter_files_selects_by_name(tmp_path: Path) -> None:
    _write("recbole", tmp_path)
    _write_lines(
        tmp_path / "other.inter", ["user_id:token\titem_id:token\ttimestamp:float", "1\t2\t3"]
    )
    with pytest.raises(DataFormatError, match="several candidate files"):
        load_interactions(tmp_path)
    _assert_rows(load_interactions(tmp_path, name="tiny"))


@pytest.mark.parametrize(
    ("file_name", "fmt", "lines", "expected"),
    [
        (
            "u.data",
            "movielens-udata",
            ["1\t2\t3\t4", "5\t6"],
            "u.data line 2: expected 4 fields, got 2",
        ),
        (
            "ratings.dat",
            "movielens-dat",
            ["1::2::3::4", "", "1::2::3"],
            "ratings.dat line 3: expected 4",
        ),
        (
            "ratings_X.csv",
            "amazon-csv",
            ["a,b,5.0,1", "a,c,5.0,1", "a,d,5.0,soon"],
            "ratings_X.csv line 3: non-numeric timestamp 'soon'",
        ),
        (
            "ratings.csv",
            "movielens-csv",
            ["userId,movieId,rating,timestamp", "1,2,3.0,nan"],
            "ratings.csv line 2: non-finite",
        ),
        (
            "ratings.csv",
            "movielens-csv",
            ["userId,movieId,rating,timestamp", "1,2,3.0"],
            "ratings.csv line 2: expected 4 fields, got 3",
        ),
        (
            "d.inter",
            "recbole",
            ["user_id:token\titem_id:token\trating:float", "1\t2\t3"],
            "d.inter line 1: header lacks column(s) timestamp",
        ),
        (
            "d.inter",
            "recbole",
            ["user_id:token\titem_id:token\ttimestamp:float", "1\t2\t3", "1\t2\tx"],
            "d.inter line 3: non-numeric",
        ),
        (
            "d.json",
            "amazon-json",
            ['{"reviewerID": "a", "asin": "b", "unixReviewTime": 1}', "{oops"],
            "d.json line 2: invalid JSON",
        ),
        (
            "d.json",
            "amazon-json",
            ['{"reviewerID": "a", "unixReviewTime": 1}'],
            "d.json line 1: missing field(s) asin",
        ),
        (
            "d.json",
            "amazon-json",
            ['{"reviewerID": "a", "asin": "b", "unixReviewTime": "x"}'],
            "d.json line 1: non-numeric",
        ),
        (
            "ratings_X.csv",
            "amazon-csv",
            ["a,,5.0,1"],
            "ratings_X.csv line 1: empty user or item id",
        ),
        ("u.data", "movielens-udata", [], "u.data: contains no interactions"),
    ],
)
def test_malformed_lines_name_file_and_line(
    file_name: str, fmt: str, lines: list[str], expected: str, tmp_path: Path
) -> None:
    path = _write_lines(tmp_path / file_name, lines)
    with pytest.raises(DataFormatError) as err:
        load_interactions(path, format=fmt)
    assert expected in str(err.value)


def test_undecodable_bytes_name_their_line(tmp_path: Path) -> None:
    path = tmp_path / "u.data"
    path.write_bytes(b"1\t2\t3\t4\n" * 3000 + b"1\t\xff\t3\t4\n")
    with pytest.raises(DataFormatError, match="u.data line 3001: not valid UTF-8"):
        load_interactions(path)


@pytest.mark.parametrize(
    ("items", "times", "expected"),
    [
        (
            ["u1 1 2 3", "u2 4 5"],
            ["u1 10 20 30", "u2 40"],
            "X_time.txt line 2: 1 timestamps for user 'u2'",
        ),
        (["u1 1 2 3", "u2 4 5"], ["u1 10 20 30", "u3 40 50"], "X_time.txt line 2: user 'u3'"),
        (["u1 1 2 3", "u2 4 5"], ["u1 10 20 30"], "X_time.txt line 2: no timestamps for user 'u2'"),
        (["u1 1"], ["u1 10", "u2 40"], "X_item.txt line 2: no items for user 'u2'"),
        (["u1 1 2"], ["u1 10 2020-01-01"], "X_time.txt line 1: non-numeric timestamp '2020-01-01'"),
    ],
)
def test_amazon_seq_mismatches_name_file_and_line(
    items: list[str], times: list[str], expected: str, tmp_path: Path
) -> None:
    _write_lines(tmp_path / "X_item.txt", items)
    _write_lines(tmp_path / "X_time.txt", times)
    with pytest.raises(DataFormatError) as err:
        load_interactions(tmp_path)
    assert expected in str(err.value)


def test_real_beauty_loads_with_documented_counts() -> None:
    path = reference_data("beauty")
    inter = load_interactions(path)
    assert detect_format(path) == "amazon-seq"
    assert len(inter) == 198_502
    assert len(set(inter.users)) == 22_363
    assert len(set(inter.items)) == 12_101


def test_real_ml100k_loads_with_documented_counts() -> None:
    path = reference_data("ml-100k")
    inter = load_interactions(path)
    assert detect_format(path) == "recbole"
    assert len(inter) == 100_000
    assert len(set(inter.users)) == 943
    assert len(set(inter.items)) == 1_682
    assert inter.timestamps.min() >= 874_724_710 and inter.timestamps.max() <= 893_286_638
