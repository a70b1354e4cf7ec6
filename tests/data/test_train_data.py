"""Relabelling and the class-count checks of the training list."""

from __future__ import annotations

import pytest

from paddlex_feat.data.lists import ListEntry
from paddlex_feat.data.train_data import build_label_dict, check_num_classes
from paddlex_feat.utils.errors import ConfigError, DatasetError


def test_relabel_and_num_classes_checks() -> None:
    entries = [ListEntry("a.jpg", 7, 1), ListEntry("b.jpg", 3, 2), ListEntry("c.jpg", 7, 3)]
    assert build_label_dict(entries) == {3: 0, 7: 1}
    assert check_num_classes(None, entries, relabel=True) == 2
    with pytest.raises(ConfigError, match="Set -o Train.num_classes=2"):
        check_num_classes(5, entries, relabel=True)
    with pytest.raises(DatasetError, match="train.txt:1: label 7 is outside 0..4"):
        check_num_classes(5, entries, relabel=False)
    assert check_num_classes(8, entries, relabel=False) == 8
