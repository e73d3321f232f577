"""`aimass train`: a labelled file becomes training examples; bad labels are refused whole."""

from __future__ import annotations

import pandas as pd
import pytest

from streams.sources.files import examples_from_file, to_label
from tests.helpers import PHISHING


def test_phishing_file_becomes_examples():
    exs = examples_from_file(PHISHING, "is_phishing", tenant="sec", now=1.0)
    df = pd.read_csv(PHISHING)
    assert len(exs) == len(df) == 1250
    assert sum(e.label for e in exs) == int(df["is_phishing"].sum())
    assert all(e.tenant == "sec" and "is_phishing" not in e.features for e in exs)
    assert set(exs[0].features) == set(df.columns) - {"is_phishing"}
    assert len({e.id for e in exs}) == 1250
    # the same file names the same examples: learning stays idempotent by id
    assert [e.id for e in examples_from_file(PHISHING, "is_phishing", now=2.0)] == [e.id for e in exs]


def test_parquet_and_missing_values(tmp_path):
    df = pd.DataFrame({"clicked": [True, False, True], "city": ["a", None, "c"], "x": [1.0, 2.0, None]})
    path = tmp_path / "ads.parquet"
    df.to_parquet(path)
    exs = examples_from_file(path, "clicked")
    assert [e.label for e in exs] == [1, 0, 1]
    assert exs[1].features == {"x": 2.0} and exs[2].features == {"city": "c"}


@pytest.mark.parametrize("value,want", [(1, 1), (0, 0), (1.0, 1), ("yes", 1), ("No", 0),
                                        ("true", 1), (False, 0)])
def test_label_coercion(value, want):
    assert to_label(value) == want


def test_bad_labels_refuse_the_file_naming_rows(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("label,x\n1,a\nmaybe,b\n0,c\n7,d\n")
    with pytest.raises(ValueError) as exc:
        examples_from_file(path, "label")
    msg = str(exc.value)
    assert "2 rows" in msg and "row 2" in msg and "row 4" in msg and "nothing was sent" in msg


def test_missing_label_column(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="no label column 'label'"):
        examples_from_file(path, "label")


def test_a_string_label_maps_by_its_positive_value(tmp_path):
    path = tmp_path / "adult.tsv"
    path.write_text("income\tage\n>50K\t52\n<=50K\t23\n >50K \t41\n<=50K\t30\n")
    exs = examples_from_file(path, "income", positive=">50K")
    assert [e.label for e in exs] == [1, 0, 1, 0] and exs[0].features == {"age": 52}
    with pytest.raises(ValueError, match="no row has 'income' equal to '>50k'"):
        examples_from_file(path, "income", positive=">50k")  # a typo refuses the file
    with pytest.raises(ValueError, match="unusable label"):
        examples_from_file(path, "income")  # without --positive, not a 0/1 column


def test_rows_keep_the_file_order_or_the_time_columns(tmp_path):
    path = tmp_path / "drift.csv"
    path.write_text("y,t,x\n1,30,a\n0,10,b\n1,20,c\n0,10,d\n")
    assert [e.features["x"] for e in examples_from_file(path, "y")] == ["a", "b", "c", "d"]
    by_time = examples_from_file(path, "y", time_column="t")
    assert [e.features["x"] for e in by_time] == ["b", "d", "c", "a"]  # stable among equals
    # an example keeps its name (file row) whatever the order
    assert {e.id for e in by_time} == {e.id for e in examples_from_file(path, "y")}
    with pytest.raises(ValueError, match="no time column 'when'"):
        examples_from_file(path, "y", time_column="when")


def test_a_test_share_marks_the_same_rows_every_time():
    exs = examples_from_file(PHISHING, "is_phishing", test_share=0.2)
    share = sum(e.test for e in exs) / len(exs)
    assert 0.16 < share < 0.24
    again = examples_from_file(PHISHING, "is_phishing", test_share=0.2)
    assert [e.test for e in exs] == [e.test for e in again]
    with pytest.raises(ValueError, match="test share"):
        examples_from_file(PHISHING, "is_phishing", test_share=1.0)


def test_a_weight_column_weighs_rows_relative_to_the_files_mean(tmp_path):
    path = tmp_path / "survey.csv"
    path.write_text("y,fnlwgt,x\n1,200000,a\n0,100000,b\n1,0,c\n0,100000,d\n")
    exs = examples_from_file(path, "y", weight_column="fnlwgt")
    assert [e.weight for e in exs] == [2.0, 1.0, 0.0, 1.0]
    assert all("fnlwgt" not in e.features for e in exs)  # a weight, not a feature
    assert [e.weight for e in examples_from_file(path, "y")] == [1.0] * 4


def test_unusable_weights_refuse_the_file_naming_rows(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("y,w\n1,1\n0,-2\n1,\n0,heavy\n1,3\n")
    with pytest.raises(ValueError) as exc:
        examples_from_file(path, "y", weight_column="w")
    msg = str(exc.value)
    assert "3 rows" in msg and "row 2" in msg and "row 3" in msg and "row 4" in msg
    assert "column 'w'" in msg and "nothing was sent" in msg
    one_giant = tmp_path / "giant.csv"  # one row at over 1000 times the mean outweighs a file
    one_giant.write_text("y,w\n" + "0,0.001\n" * 2000 + "1,100\n")
    with pytest.raises(ValueError, match="row 2001"):
        examples_from_file(one_giant, "y", weight_column="w")
    with pytest.raises(ValueError, match="no weight column 'wt'"):
        examples_from_file(path, "y", weight_column="wt")
