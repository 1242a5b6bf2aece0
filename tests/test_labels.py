import pytest

from ferkit.errors import ConfigError
from ferkit.labels import (
    FER2013,
    FERPLUS,
    ClassSpec,
    canonical,
    negative_indices,
    parse_classes,
    parse_mapping,
)


def test_synonyms_fold_to_canonical_names():
    assert canonical(" Sadness ") == "sad"
    assert canonical("HAPPINESS") == "happy"
    assert canonical("anger") == "angry"
    assert canonical("neutral") == "neutral"


def test_negative_set_follows_the_taxonomy():
    assert [FER2013[i] for i in negative_indices(FER2013)] == ["angry", "disgust", "fear", "sad"]
    assert "contempt" in [FERPLUS[i] for i in negative_indices(FERPLUS)]
    assert negative_indices(["happy", "neutral"]) == []


def test_mapping_merges_and_subsets():
    spec = ClassSpec(keep=("angry", "happy", "sad", "neutral"),
                     mapping=parse_mapping("disgust=angry,fear=sad"))
    assert spec.map_name("disgust") == "angry"
    assert spec.map_name("Fear") == "sad"
    assert spec.resolve(["angry"]) == ["angry", "happy", "sad", "neutral"]


def test_negative_vs_rest():
    spec = ClassSpec(binary_negative=True)
    assert spec.map_name("fear") == "negative"
    assert spec.map_name("surprise") == "other"
    assert spec.resolve([]) == ["negative", "other"]


def test_parse_errors_are_clear():
    with pytest.raises(ConfigError, match="old=new"):
        parse_mapping("sadness")
    with pytest.raises(ConfigError, match="at least two"):
        parse_classes("happy")
    assert parse_classes("ferplus") == FERPLUS
    assert parse_classes("angry,Happiness") == ("angry", "happy")
