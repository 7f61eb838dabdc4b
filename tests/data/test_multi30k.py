import gzip

import pytest

from hat.data.multi30k import download_multi30k, find_multi30k
from hat.errors import HatError


def test_find_shared_gz(shared_dir):
    found = find_multi30k(shared_dir / "data" / "multi30k")
    assert set(found) == {"train", "val", "test_2016_flickr"}
    assert found["train"].name == "train"


def test_find_plain_and_missing(tmp_path):
    for s in ("train", "val", "test_2016_flickr"):
        for lang in ("de", "en"):
            (tmp_path / f"{s}.{lang}").write_text("x\n")
    assert find_multi30k(tmp_path)["val"] == tmp_path / "val"
    (tmp_path / "val.en").unlink()
    with pytest.raises(HatError, match="val.en"):
        find_multi30k(tmp_path)
    with pytest.raises(HatError, match="not found"):
        find_multi30k(tmp_path / "nope")


def test_download_offline_is_a_clean_error(tmp_path):
    # port 9 on localhost: connection refused at once, no network needed
    with pytest.raises(HatError, match="cannot download"):
        download_multi30k(tmp_path / "dl", langs=("de",), splits=("val",), base_url="http://127.0.0.1:9/raw",
                          timeout_s=2)
    assert list((tmp_path / "dl").iterdir()) == []  # no partial files left


def test_download_from_mirror(tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    with gzip.open(mirror / "val.de.gz", "wt") as f:
        f.write("Ein Hund.\n")
    monkeypatch.setenv("HAT_MULTI30K_URL", mirror.as_uri())
    out = download_multi30k(tmp_path / "dl", langs=("de",), splits=("val",))
    assert (out / "val.de.gz").read_bytes() == (mirror / "val.de.gz").read_bytes()
