"""Per-user metric files: round trip with raw user ids, and the one-line error when missing."""

import json

import numpy as np
import pytest

from llmrec.errors import LlmrecError
from llmrec.eval import read_per_user, write_per_user


def test_round_trip_keeps_raw_ids_values_and_nan(tmp_path):
    users = np.array(["u10", "7", "x y"])
    write_per_user(tmp_path / "run" / "per_user",
                   {"test": (users, {"ndcg@10": [0.5, 0.0, 1.0], "ild@10": [0.2, np.nan, 1]})},
                   {"split_hash": "abc", "mask": "history", "ks": [10]})
    meta, frame = read_per_user(tmp_path / "run", "test")
    assert meta["split_hash"] == "abc" and meta["parts"]["test"] == {"cases": 3,
                                                                     "mask": "history"}
    assert frame["user_id"].to_list() == ["u10", "7", "x y"]
    assert frame["ndcg@10"].to_list() == [0.5, 0.0, 1.0]
    assert np.isnan(frame["ild@10"][1])
    # a second write of another part keeps the first in meta.json
    write_per_user(tmp_path / "run" / "per_user", {"valid": (users[:1], {"ndcg@10": [1.0]})},
                   {"split_hash": "abc", "mask": "history", "ks": [10]})
    parts = json.loads((tmp_path / "run" / "per_user" / "meta.json").read_text())["parts"]
    assert set(parts) == {"test", "valid"}
    assert not list((tmp_path / "run" / "per_user").glob("*.tmp"))      # atomic writes


def test_missing_files_name_the_fix(tmp_path):
    with pytest.raises(LlmrecError, match=r"no per-user metrics; re-run `llmrec evaluate "):
        read_per_user(tmp_path, "test")
    write_per_user(tmp_path / "per_user", {"test": (np.array(["1"]), {"ndcg@10": [1.0]})}, {})
    with pytest.raises(LlmrecError, match=r"no per-user metrics for part 'valid' \(has test\)"):
        read_per_user(tmp_path, "valid")
    with pytest.raises(ValueError, match=r"test/m: \(2,\) values for 1 users"):
        write_per_user(tmp_path / "per_user", {"test": (np.array(["1"]), {"m": [1.0, 2.0]})}, {})
