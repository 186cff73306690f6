"""models.data.labels: vocabularies and cell parsing."""

from __future__ import annotations

import pytest

from models.data.labels import class_index, parse_label_value, validate_label_names


def test_parse_label_value_names_indices_and_unknowns():
    assert parse_label_value("gender", " Female ") == 1
    assert parse_label_value("ethnicity", "3") == 3
    for unknown in ("", "-1", "unknown", "N/A"):
        assert parse_label_value("gender", unknown) is None
    with pytest.raises(ValueError, match="not a gender class"):
        parse_label_value("gender", "2")


def test_validate_label_names():
    assert validate_label_names(["id", "gender"]) == ("id", "gender")
    for bad in ([], ["gender", "gender"], ["shoe"]):
        with pytest.raises(ValueError):
            validate_label_names(bad)
    with pytest.raises(KeyError, match="valid"):
        class_index("hairstyle", "mohawk")
