import pytest

from fer_core.labels import (AFFECTNET8, CANONICAL, FER2013, FERPLUS, RAFDB, canonical_name, get_label_set,
                             index_map, shared_names)


def test_orders():
    assert FERPLUS.names == CANONICAL == ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt")
    assert FER2013.names[0] == "anger" and FER2013.names[6] == "neutral"
    assert RAFDB.names[0] == "surprise" and RAFDB.names[6] == "neutral"  # RAF-DB label 1 = Surprise, 7 = Neutral
    assert AFFECTNET8.names[-1] == "contempt" and get_label_set("ddamfn_official7").names[2] == "sadness"


def test_maps_by_name():
    m = index_map(FER2013, FERPLUS)
    assert [FERPLUS.names[j] for j in m] == list(FER2013.names)
    assert index_map(FERPLUS, FER2013)[FERPLUS.index("contempt")] == -1
    assert shared_names(FERPLUS, RAFDB) == FERPLUS.names[:7]


def test_synonyms_and_unknown():
    assert canonical_name(" Angry ") == "anger" and canonical_name("HAPPY") == "happiness"
    with pytest.raises(ValueError, match="unknown expression label 'bored'"):
        canonical_name("bored")
    assert get_label_set(["Happy", "sad"]).names == ("happiness", "sadness")
