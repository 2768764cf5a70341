"""Checks for config options added after run folders existed (:func:`llmrec.config.added_option`)."""

from __future__ import annotations

from ..runs import RunConfig, load_config


def check_added_option(default: str, other: str, model: str = "sasrec") -> RunConfig:
    """``default`` and ``other`` are ``--set`` assignments of one option (``"model.x=1"``).

    Asserts that a config without the option leaves it out of its resolved form, that setting
    it to its default keeps the hash of that config (so earlier run folders are found again)
    and that ``other`` changes the hash. Returns the config with ``other``.
    """
    section, _, rest = default.partition(".")
    name = rest.partition("=")[0].strip()
    base = load_config(model=model, dataset="ml-100k")
    same = load_config(model=model, dataset="ml-100k", sets=[default])
    changed = load_config(model=model, dataset="ml-100k", sets=[other])
    assert name not in base.to_dict()[section], f"{section}.{name} is in the resolved config"
    assert same.hash() == base.hash(), f"{default} changes the run hash"
    assert changed.hash() != base.hash(), f"{other} leaves the run hash alone"
    return changed
