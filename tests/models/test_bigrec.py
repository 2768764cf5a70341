"""BIGRec: the contract with a tiny random causal LM, grounding, the popularity factor, the
zero-shot control, leakage of the fine-tuning examples, and one check on the packaged model.

The tiny LM is a 2-layer LLaMA (hidden 32) with the SmolLM2 tokenizer from the packaged
model's conversion cache, randomly initialised and saved as a Hugging Face folder: nothing is
downloaded. The synthetic titles are single words, so "which title follows" is a lookup the
tiny model learns in a few seconds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from llmrec.data import leave_one_out
from llmrec.models import BIGRec, load_model
from llmrec.models.bigrec import grounded_scores, popularity_factor
from llmrec.testing import RecommenderContract, chain_interactions

WORDS = ("apple river stone cloud tiger piano garden rocket candle mirror forest island castle "
         "dragon silver ocean planet window winter summer desert bridge engine shadow spider "
         "thunder violin wizard yellow zebra").split()
TINY = dict(mode="full", encoder="hashing", max_items=1, chat=False, learning_rate=3e-2,
            targets_per_user=5, batch_size=16, micro_batch_size=16, epochs=2, warmup_steps=5,
            max_new_tokens=6,
            generate_batch_size=64, max_seq_len=64)
# plain-text prompts that end with the last title, so the next title's first token is a
# function of the token before it (a bigram): learnable by a tiny random model in seconds
PLAIN = """id = "plain_next"
version = 1
system = ""
user = "{history}"
answer = "{title}"

[params]
max_items = 1
"""


def _packaged_folder(cache: Path) -> Path:
    """The packaged SmolLM2-135M as a Hugging Face folder (converted once, then cached)."""
    import fcntl

    from llmrec.lm import load_lm

    found = sorted(cache.glob("gguf/*/llmrec.json"))
    if not found:
        with open(cache / "convert.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            load_lm(cache_dir=cache)
        found = sorted(cache.glob("gguf/*/llmrec.json"))
    return found[0].parent


@pytest.fixture(scope="module")
def packaged(request) -> Path:
    return _packaged_folder(Path(request.config.cache.mkdir("llmrec-lm")))


@pytest.fixture(scope="module")
def tiny_lm(packaged: Path, tmp_path_factory) -> Path:
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    folder = tmp_path_factory.mktemp("tiny-lm")
    tok = AutoTokenizer.from_pretrained(str(packaged))
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64,
                      num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                      max_position_embeddings=256, tie_word_embeddings=False,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                      pad_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    LlamaForCausalLM(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


class TestBIGRecContract(RecommenderContract):
    @pytest.fixture(scope="class", autouse=True)
    @classmethod
    def _lm_folder(cls, tiny_lm, tmp_path_factory):
        cls.lm_folder = str(tiny_lm)
        cls.template = tmp_path_factory.mktemp("template") / "plain_next.toml"
        cls.template.write_text(PLAIN)

    def make_model(self, **overrides):
        return BIGRec(**{**TINY, "lm": self.lm_folder, "template": str(self.template),
                         **overrides}).set_titles(list(WORDS))

    def test_grounding_maps_each_exact_title_to_its_item(self, fitted):
        scores = fitted.ground(list(WORDS))                              # (30, 30)
        assert scores.argmax(1).tolist() == list(range(len(WORDS)))

    def test_zero_shot_control_is_near_chance(self, fitted, chains):
        """Without fine-tuning the (random) LM's generations say nothing of the next item;
        the fine-tuned model (the contract's chain test) predicts it."""
        control = self.make_model(finetune=False).fit(chains.train, progress=False)
        cases = chains.test_cases()
        histories = cases.histories(0, len(cases))
        hits = [np.mean([r.items[0] == t for r, t in
                         zip(m.recommend_batch(histories, 1), cases.target_items)])
                for m in (control, fitted)]
        assert hits[0] <= 0.15 and hits[1] >= 0.9, hits
        assert not any(k.startswith("lm.") for k in control.state_tensors())

    def test_gamma_blends_in_popularity(self, fitted, chains):
        history = chains.test_cases().history(0)
        fitted.config.gamma = 0.0
        plain = fitted.score([history])[0]
        fitted.config.gamma = 100.0
        try:
            popular = fitted.score([history])[0]
        finally:
            fitted.config.gamma = 0.0
        best = int(plain.argmax())
        assert int(popular.argmax()) == best          # distance 0 stays first
        rest = np.array([i for i in range(len(WORDS)) if i != best])
        pop = fitted.popularity.numpy()[rest]
        rank_corr = np.corrcoef(np.argsort(np.argsort(-popular.numpy()[rest])),
                                np.argsort(np.argsort(-pop)))[0, 1]
        assert rank_corr > 0.9, rank_corr

    def test_model_folder_holds_the_adapter_and_loads_alone(self, fitted, tmp_path: Path):
        folder = fitted.save(tmp_path / "m")
        loaded = load_model(folder)
        assert loaded.titles == list(WORDS)
        names = [k for k in loaded.state_tensors() if k.startswith("lm.")]
        assert names and len(names) == len(fitted.state_tensors()) - 4


def test_training_examples_come_from_the_training_split_only():
    split = leave_one_out(chain_interactions(n_users=40))
    model = BIGRec(encoder="hashing", targets_per_user=3).set_titles(list(WORDS))
    examples = model.training_examples(split.train)
    assert len(examples) == 3 * 40
    for ex in examples:
        train_items = set(split.train.sequence(ex.user).tolist())
        assert set(ex.items) <= train_items
        held = [WORDS[i] for i in split.interactions.sequence(ex.user)
                if i not in train_items]
        assert not any(w in ex.prompt.split() or w == ex.answer for w in held)


def test_popularity_factor_limits():
    rng = np.random.default_rng(0)
    queries, items = torch.randn(4, 8), torch.randn(50, 8)
    pop = torch.from_numpy(rng.permutation(50).astype(np.float32))
    plain = grounded_scores(queries, items, popularity_factor(pop, 0.0))
    torch.testing.assert_close(plain.argsort(1, descending=True),
                               torch.cdist(queries, items).argsort(1))
    strong = grounded_scores(queries, items, popularity_factor(pop, 100.0))
    for row in strong:                       # beyond the nearest item: by popularity
        nearest = int(row.argmax())
        rest = torch.tensor([i for i in range(50) if i != nearest])
        corr = np.corrcoef(row[rest].argsort().argsort().numpy(),
                           pop[rest].argsort().argsort().numpy())[0, 1]
        assert corr > 0.95, corr


def test_packaged_model_lora_adapter_round_trip(packaged: Path, tmp_path: Path):
    """The real SmolLM2-135M with LoRA: two steps, a model folder holding only the LoRA
    tensors (no base weights), and identical scores after loading."""
    split = leave_one_out(chain_interactions(n_users=6, steps=4))
    model = BIGRec(lm=str(packaged), encoder="hashing", max_items=2, batch_size=2,
                   micro_batch_size=2, max_steps=2, max_new_tokens=4,
                   generate_batch_size=4).set_titles(list(WORDS))
    model.fit(split.train, run_dir=tmp_path / "run", progress=False)
    assert model.fit_info["finetune_steps"] == 2
    assert (tmp_path / "run" / "lm" / "adapter.safetensors").exists()
    folder = model.save(tmp_path / "m")
    tensors = {k: v for k, v in model.state_tensors().items() if k.startswith("lm.")}
    assert tensors and all("lora_" in k for k in tensors)
    assert sum(v.numel() for v in tensors.values()) < 1_000_000
    histories = split.test_cases().histories(0, 3)
    torch.testing.assert_close(load_model(folder).score(histories), model.score(histories),
                               rtol=0, atol=0)


def test_random_init_control_keeps_the_architecture_and_changes_the_weights(tiny_lm: Path):
    split = leave_one_out(chain_interactions(n_users=10))
    made = {init: BIGRec(lm=str(tiny_lm), init=init, finetune=False, encoder="hashing")
            .set_titles(list(WORDS)).fit(split.train, progress=False)
            for init in ("pretrained", "random")}
    again = BIGRec(lm=str(tiny_lm), init="random", finetune=False, encoder="hashing")
    again.set_titles(list(WORDS)).fit(split.train, progress=False)
    base, rand = (made[k].lm.model.state_dict() for k in ("pretrained", "random"))
    assert base.keys() == rand.keys()
    assert all(base[k].shape == rand[k].shape for k in base)
    changed = [k for k in base if not torch.equal(base[k], rand[k])]
    assert any("q_proj" in k for k in changed) and any("embed" in k for k in changed)
    same = again.lm.model.state_dict()
    assert all(torch.equal(same[k], rand[k]) for k in rand)        # seeded: reproducible
