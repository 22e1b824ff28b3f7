import hashlib

import pytest

from maskwatch import ChecksumError, ModelNotFoundError, registry


@pytest.fixture
def fake_model(tmp_path, monkeypatch):
    """A registered model whose 'official URL' is a local file (no network here)."""
    src = tmp_path / "upstream" / "tiny.onnx"
    src.parent.mkdir()
    src.write_bytes(b"tiny model bytes")
    info = registry.ModelFile("tiny", "tiny.onnx", hashlib.sha256(src.read_bytes()).hexdigest(), src.as_uri(),
                              "MIT", "test model")
    monkeypatch.setitem(registry.MODELS, "tiny", info)
    monkeypatch.delenv("MASKWATCH_OFFLINE", raising=False)
    monkeypatch.delenv("MASKWATCH_MODELS", raising=False)
    return info


def test_download_checks_sha_and_caches(fake_model):
    path = registry.resolve("tiny", progress=False)
    assert path == registry.cache_dir() / "tiny.onnx"
    assert path.read_bytes() == b"tiny model bytes"
    assert not list(path.parent.glob("*.part"))
    assert registry.find("tiny") == path


def test_checksum_mismatch_leaves_nothing(fake_model, monkeypatch):
    monkeypatch.setitem(registry.MODELS, "tiny", registry.ModelFile(
        "tiny", "tiny.onnx", "0" * 64, fake_model.url, "MIT", "test"))
    with pytest.raises(ChecksumError, match="does not match"):
        registry.fetch("tiny", progress=False)
    assert not (registry.cache_dir() / "tiny.onnx").exists()
    assert not list(registry.cache_dir().glob("*.part"))


def test_offline_error_says_what_to_put_where(fake_model, monkeypatch):
    monkeypatch.setenv("MASKWATCH_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError) as info:
        registry.resolve("tiny")
    msg = str(info.value)
    assert fake_model.sha256 in msg and str(registry.cache_dir() / "tiny.onnx") in msg


def test_failed_download_is_a_model_not_found_error(fake_model, monkeypatch, tmp_path):
    monkeypatch.setitem(registry.MODELS, "tiny", registry.ModelFile(
        "tiny", "tiny.onnx", None, (tmp_path / "gone.onnx").as_uri(), "MIT", "test"))
    with pytest.raises(ModelNotFoundError, match="download failed"):
        registry.resolve("tiny", progress=False)


def test_models_folder_takes_precedence_over_download(fake_model, monkeypatch, tmp_path):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "tiny.onnx").write_bytes(b"local")
    monkeypatch.setenv("MASKWATCH_MODELS", str(folder))
    assert registry.resolve("tiny") == folder / "tiny.onnx"


def test_shipped_classifier_is_found_in_the_package():
    path = registry.find("mask-classifier")
    assert path is not None and path.parent == registry.PACKAGE_MODELS
    assert path.stat().st_size <= 10_000_000


def test_unknown_model_name():
    with pytest.raises(KeyError, match="unknown model"):
        registry.resolve("nope")


@pytest.mark.parametrize("name", ["mask-classifier-int8", "maskwatch-detector"])
def test_shipped_int8_models_keep_their_weights_in_7_bits(name):
    pytest.importorskip("onnx", reason="reading initializers needs the onnx package (train extra)")
    from quant import assert_7_bit_weights

    assert_7_bit_weights(registry.resolve(name))  # no uint8 x int8 sum saturates on AVX2-only CPUs
