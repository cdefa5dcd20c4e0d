import pytest

from modbal_lib.data import DATASETS, load


def test_unknown_dataset_split_and_option_are_clear_errors():
    with pytest.raises(ValueError, match="known datasets: cremad, emoji, food101"):
        load("imagenet", "train")
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        load("seesaw", "dev")
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['classes'\]; its options are \[.*'num_modalities'"):
        load("seesaw", "train", classes=3)


def test_every_registered_dataset_has_a_loader():
    import importlib

    for module in DATASETS.values():
        assert callable(importlib.import_module(module).load)
