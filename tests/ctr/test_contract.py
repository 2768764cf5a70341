"""The contract every CTR model keeps, run against DeepFM, DCNv2 and DIN (with and without
KAR knowledge): a known answer, save/load, batch == one by one, determinism, prestored vectors,
and an accuracy floor on real ML-100K."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from llmrec.ctr import CTR_MODELS, DCNv2, DeepFM, DIN, auc, load_ctr_model
from llmrec.errors import ConfigError, DataError

SMALL = dict(embedding_size=8, mlp_sizes=[32, 16], dropout=0.0, batch_size=128,
             learning_rate=1e-2, epochs=12, patience=3, threads=1)


class CTRContract:
    model_class: type

    def make(self, **overrides):
        return self.model_class(**{**SMALL, **overrides})

    @pytest.fixture(scope="class")
    @classmethod
    def fitted(cls, interaction):
        return cls().make().fit(interaction.train, interaction.valid, progress=False)

    @pytest.fixture(scope="class")
    @classmethod
    def fitted_knowledge(cls, knowledge):
        return cls().make(knowledge=True).fit(knowledge.train, knowledge.valid, progress=False)

    def test_learns_a_feature_interaction(self, fitted, interaction):
        test = interaction.test
        score = auc(test.label, fitted.predict(test))
        assert score > 0.9, f"AUC {score:.3f} on a label set by a user x item interaction"

    def test_validate_reports_auc_logloss_gauc(self, fitted, interaction):
        m = fitted.validate(interaction.valid)
        assert set(m) == {"auc", "logloss", "gauc"} and 0 < m["logloss"] < 0.7
        assert fitted.fit_info["best_valid_auc"] == pytest.approx(m["auc"])

    def test_save_load_gives_identical_predictions(self, fitted, interaction, tmp_path):
        fitted.save(tmp_path / "m")
        loaded = load_ctr_model(tmp_path / "m")
        assert type(loaded) is type(fitted) and loaded.config == fitted.config
        np.testing.assert_array_equal(loaded.predict(interaction.test),
                                      fitted.predict(interaction.test))

    def test_batch_equals_one_by_one(self, fitted, interaction):
        data = interaction.test.take(np.arange(40))
        batched = fitted.predict(data)
        single = fitted.predict(data, batch_size=1)
        np.testing.assert_allclose(batched, single, rtol=1e-5, atol=1e-6)

    def test_same_seed_same_model(self, fitted, interaction):
        again = self.make().fit(interaction.train, interaction.valid, progress=False)
        np.testing.assert_array_equal(again.predict(interaction.test),
                                      fitted.predict(interaction.test))

    def test_knowledge_vectors_carry_the_signal_for_cold_items(self, fitted_knowledge, knowledge):
        test = knowledge.test                    # items never seen in training
        with_k = auc(test.label, fitted_knowledge.predict(test))
        without = self.make().fit(knowledge.train, knowledge.valid, progress=False)
        without_k = auc(test.label, without.predict(test))
        assert with_k > 0.8, f"AUC {with_k:.3f} with knowledge"
        assert without_k < 0.65, f"AUC {without_k:.3f} without knowledge (ids cannot know)"

    def test_prestored_vectors_replace_the_adapter(self, fitted_knowledge, knowledge, tmp_path):
        test = knowledge.test
        live = fitted_knowledge.predict(test)
        fitted_knowledge.prestore(knowledge)
        try:
            bare = test.without_knowledge()
            np.testing.assert_allclose(fitted_knowledge.predict(bare), live, atol=1e-6)
            fitted_knowledge.save(tmp_path / "k")
            loaded = load_ctr_model(tmp_path / "k")
            np.testing.assert_array_equal(loaded.predict(bare), fitted_knowledge.predict(bare))
        finally:
            fitted_knowledge.prestored = None
        with pytest.raises(DataError, match="no knowledge vectors"):
            fitted_knowledge.predict(bare)


class TestDeepFM(CTRContract):
    model_class = DeepFM


class TestDCNv2(CTRContract):
    model_class = DCNv2


class TestDIN(CTRContract):
    model_class = DIN


def test_dcnv2_stacked_structure_learns_the_interaction(interaction):
    model = DCNv2(**SMALL, structure="stacked").fit(interaction.train, interaction.valid,
                                                    progress=False)
    assert auc(interaction.test.label, model.predict(interaction.test)) > 0.9


def test_every_registered_model_is_tested():
    assert {c.model_class for c in (TestDeepFM, TestDCNv2, TestDIN)} == set(CTR_MODELS.values())


def test_configs_are_validated_and_round_trip():
    with pytest.raises(ConfigError, match="structure"):
        DCNv2(structure="diagonal")
    with pytest.raises(ConfigError, match="unknown option"):
        DeepFM(embeding_size=8)
    with pytest.raises(ConfigError):
        DIN(dropout=1.5)
    from llmrec.config import from_dict, to_dict
    cfg = DIN(knowledge=True, attention_sizes=[16]).config
    assert from_dict(type(cfg), to_dict(cfg)) == cfg


@pytest.mark.parametrize("kinds", [("user", "item"), ("item",)])
def test_knowledge_kinds_select_and_order_the_augmented_fields(kinds, knowledge, tmp_path):
    model = DeepFM(**{**SMALL, "epochs": 2}, knowledge=True, knowledge_kinds=list(kinds))
    model.fit(knowledge.train, progress=False)
    assert model.module.adapter.kinds == kinds and model.module.num_knowledge_fields == len(kinds)
    live = model.predict(knowledge.test)
    model.prestore(knowledge)
    assert list(model.prestored) == list(kinds)
    model.save(tmp_path / "m")
    loaded = load_ctr_model(tmp_path / "m")
    served = loaded.predict(knowledge.test.without_knowledge())
    np.testing.assert_allclose(served, live, atol=1e-6)
    with pytest.raises(ConfigError, match="knowledge_kinds"):
        DeepFM(knowledge=True, knowledge_kinds=["item", "item"])


def test_knowledge_model_refuses_data_without_vectors(interaction):
    with pytest.raises(DataError, match="knowledge"):
        DeepFM(**SMALL, knowledge=True).fit(interaction.train, progress=False)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CTR_MODELS))
def test_accuracy_floor_on_ml100k(name, ml100k_ctr):
    d = ml100k_ctr
    model = CTR_MODELS[name](epochs=1, batch_size=1024, learning_rate=2e-3, threads=1)
    model.fit(d.train, progress=False)
    m = model.validate(d.test)
    assert m["auc"] > 0.72 and m["gauc"] > 0.65 and m["logloss"] < 0.64, m


def test_item_codes_carry_what_cold_item_ids_cannot(knowledge):
    """Click iff the user's attribute matches a code of the item; test items never occur in
    training (the fixture's cold-item split), so their ID embeddings are untrained: only the
    code field can tell them apart."""
    code = np.random.default_rng(1).integers(0, 2, knowledge.schema.n_items)
    label = (knowledge.user_table[knowledge.user, 0] - 1 == code[knowledge.item])
    data = replace(knowledge.without_knowledge(), label=label.astype(np.float32))
    scores = {}
    for name, d in (("id", data), ("id+codes", data.with_item_codes(code[:, None]))):
        model = DeepFM(**SMALL).fit(d.train, d.valid, progress=False)
        scores[name] = auc(d.test.label, model.predict(d.test))
    assert scores["id+codes"] > 0.9 and scores["id"] < 0.65, scores
