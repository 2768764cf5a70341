"""The fast serving paths give the answers of the plain ones: DIN with its item side
precomputed vs the model's forward, batched forwards vs one request at a time, and explicit
histories ranked by the CTR model (the user's features when the user is known, else the
average user)."""

from __future__ import annotations

import asyncio
import shutil

import numpy as np
import pytest


def _ranked_artifacts(serve_run, artifacts, tmp_path_factory, model):
    from llmrec.ctr import build_ctr_data
    from llmrec.ctr._knowledge import knowledge_tables
    from llmrec.encode import HashingEncoder
    from llmrec.serve import ServeConfig, load_artifacts, save_ctr_ranker

    ds = artifacts.dataset
    data = build_ctr_data(ds)
    data = knowledge_tables(ds, data, "metadata", HashingEncoder(64),
                            progress=False).attach(data)
    model.fit(data.train, data.valid, progress=False)
    run = tmp_path_factory.mktemp(f"{model.name}-run") / "run"
    shutil.copytree(serve_run, run)
    save_ctr_ranker(run, model, data, ds)
    return (load_artifacts(run, ServeConfig(encoder="hashing", diversity=0.3, ranker="ctr")),
            model, data)


@pytest.fixture(scope="module")
def din(serve_run, artifacts, tmp_path_factory):
    from llmrec.ctr import DIN

    return _ranked_artifacts(serve_run, artifacts, tmp_path_factory, DIN(
        epochs=2, embedding_size=8, mlp_sizes=(16, 8), attention_sizes=(12, 6),
        expert_sizes=(16,), knowledge=True, seed=0))


@pytest.fixture(scope="module")
def deepfm(serve_run, artifacts, tmp_path_factory):
    from llmrec.ctr import DeepFM

    return _ranked_artifacts(serve_run, artifacts, tmp_path_factory, DeepFM(
        epochs=1, embedding_size=8, mlp_sizes=(16,), expert_sizes=(16,), knowledge=True,
        seed=0))


def _queries(art, rng, count=24):
    """(user, history, ratings, candidates) in serving indices: known and unknown users,
    empty to over-long histories, random candidate sets."""
    out = []
    for k in range(count):
        user = None if k % 3 == 0 else int(rng.integers(art.dataset.n_users))
        h = int(rng.choice([0, 1, 4, 10, 25]))
        hist = rng.choice(art.n_items, size=h, replace=False).astype(np.int64)
        stars = rng.integers(0, 6, size=h).astype(np.float32)
        cands = rng.choice(art.n_items, size=int(rng.integers(1, 150)), replace=False)
        out.append((user, hist, stars, cands.astype(np.int64)))
    return out


def test_reference_path_is_the_models_prediction(din):
    art, model, data = din
    rows = np.flatnonzero(data.hist_items[:, 0] < data.schema.n_items)[:30]
    expected = model.predict(data.take(rows))
    for row, want in zip(rows, expected):
        got = art.ranker.score(int(data.user[row]), data.hist_items[row],
                               data.hist_ratings[row].astype(float), np.array([data.item[row]]))
        assert got[0] == pytest.approx(want, abs=1e-6)


@pytest.mark.parametrize("which", ["din", "deepfm"])
def test_fast_ranker_equals_reference(which, request):
    art, _, _ = request.getfixturevalue(which)
    ranker = art.ranker
    assert (ranker.fast is not None) == (which == "din")
    queries = _queries(art, np.random.default_rng(1))
    fast = ranker.score_many(queries)                       # all at once
    for q, got in zip(queries, fast):
        want = ranker.score(*q)                             # the model's forward, one request
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
        assert np.isfinite(want).all() and (0 < want).all() and (want < 1).all()


def test_prestored_tables_equal_reference(din):
    """Known users' stored histories (prestored click probabilities) and the item-pair
    attention table of unrated histories give the model's forward."""
    from llmrec.serve._rank import stored_history

    art, _, _ = din
    ranker = art.ranker
    assert ranker.user_scores is not None and ranker.fast.pair_weight is not None
    items = np.arange(art.n_items)
    for u in (0, 7, art.dataset.n_users - 1):
        hist, stars = stored_history(art.dataset, u)
        np.testing.assert_allclose(ranker.stored_scores(u, items),
                                   ranker.score(u, hist, stars, items), atol=1e-5)
    hist = np.array([3, 17, 250, 9])
    for user in (None, 4):
        q = (user, hist, np.zeros(4, np.float32), items)
        np.testing.assert_allclose(ranker.score_many([q])[0], ranker.score(*q), atol=1e-5)


def test_average_user_is_the_mean_of_the_known_users(din):
    art, model, _ = din
    ranker = art.ranker
    f = ranker.model.module.features
    u = ranker.unknown_user
    assert u == model.schema.n_users == f.user.num_embeddings - 1
    np.testing.assert_allclose(f.user.weight[u].detach(), f.user.weight[:u].detach().mean(0),
                               atol=1e-7)
    codes = ranker.user_table[:u]
    for k, e in enumerate(f.user_fields):
        np.testing.assert_allclose(e.weight[ranker.user_table[u, k]].detach(),
                                   e.weight[codes[:, k]].detach().mean(0), atol=1e-7)
    pre = ranker.model.prestored["user"]
    np.testing.assert_allclose(pre[u], pre[:u].mean(0), atol=1e-7)
    # a serving user the CTR model does not know, and no user at all, both get that row
    assert ranker.ctr_user(None) == u


def test_explicit_histories_are_ranked(din):
    from llmrec.serve import Service

    art, _, _ = din
    svc = Service(art)
    ds = art.dataset
    hist_ids = [str(x) for x in ds.items.ids[ds.interactions.sequence(3)[-20:]]]
    hist = np.array([ds.items.index(x) for x in hist_ids])
    for user_id, user in ((None, None), ("anon", None), (str(ds.users.ids[5]), 5)):
        out = svc.recommend(user_id=user_id, history=hist_ids, n=10, diversity=0.0)
        assert out["ranker"] == "din" and out["history_source"] == "request"
        items = np.array([ds.items.index(it["item_id"]) for it in out["items"]])
        want = art.ranker.score(user, hist, np.zeros(len(hist)), items)
        np.testing.assert_allclose([it["score"] for it in out["items"]], want, atol=1e-5)
        assert [it["score"] for it in out["items"]] == sorted(
            (it["score"] for it in out["items"]), reverse=True)
    # the known user's own features change the scores
    anon = svc.recommend(history=hist_ids, n=5)["items"]
    known = svc.recommend(user_id=str(ds.users.ids[5]), history=hist_ids, n=5)["items"]
    assert [it["score"] for it in anon] != [it["score"] for it in known]


def _requests(art):
    """Service keyword arguments: stored histories, explicit ones with and without a known
    user, cold starts with a filter."""
    ds = art.dataset
    out = []
    for k in range(30):
        uid = str(ds.users.ids[k % ds.n_users])
        hist = [str(x) for x in ds.items.ids[ds.interactions.sequence(k % ds.n_users)[-20:]]]
        out.append([{"user_id": uid},
                    {"history": hist, "n": 7},
                    {"user_id": uid, "history": hist[:5 + k % 10], "diversity": 0.5},
                    {"user_id": f"new-{k}", "n": 5, "genres": ["Drama"]}][k % 4])
    return out


def _stored(art, reqs) -> int:
    """How many of ``reqs`` are known users served from their stored history."""
    return sum("history" not in r and r.get("user_id") in art.dataset.users for r in reqs)


def _body(request: dict) -> dict:
    """The HTTP body of Service keyword arguments."""
    body = {k: v for k, v in request.items() if k != "genres"}
    if "genres" in request:
        body["filters"] = {"genres": request["genres"]}
    return body


@pytest.mark.parametrize("which", ["plain", "din"])
def test_batched_requests_equal_one_by_one(which, artifacts, request):
    from llmrec.serve import Service
    from llmrec.serve._batch import MicroBatcher

    art = artifacts if which == "plain" else request.getfixturevalue("din")[0]
    svc = Service(art)
    reqs = _requests(art)
    alone = [svc.recommend(**r) for r in reqs]
    batcher = MicroBatcher(svc, window=0.05, max_batch=64)

    async def together():
        return await asyncio.gather(*(batcher.recommend(**r) for r in reqs))

    batched = asyncio.run(together())
    # every request started before any forward ran: one batch per kind of forward
    assert batcher.stats["sequential"] == [1, sum("history" in r for r in reqs)]
    if which == "din":        # stored histories: prestored; cold starts rank in batch 1
        assert batcher.stats["rank"] == [2, len(reqs) - _stored(art, reqs)]
    assert batcher.running == 0 and not batcher.pending
    for a, b in zip(alone, batched):
        _same(a, b)
    # a padded batch is not bit-identical to one history alone (float rounding, ~1e-6)


def _same(a: dict, b: dict) -> None:
    """Two responses agree: the same items in the same order, scores within 1e-5, the rest
    equal."""
    assert [it["item_id"] for it in a["items"]] == [it["item_id"] for it in b["items"]]
    np.testing.assert_allclose([it["score"] for it in a["items"]],
                               [it["score"] for it in b["items"]], atol=1e-5)
    for x, y in zip(a["items"], b["items"]):
        assert {k: v for k, v in x.items() if k not in ("score", "channels")} == \
            {k: v for k, v in y.items() if k not in ("score", "channels")}
        assert x["channels"].keys() == y["channels"].keys()
        np.testing.assert_allclose(list(x["channels"].values()),
                                   list(y["channels"].values()), atol=1e-5)
    assert {k: v for k, v in a.items() if k != "items"} == \
        {k: v for k, v in b.items() if k != "items"}


def test_batched_request_errors_stay_with_their_request(artifacts):
    from llmrec.serve import RequestError, Service
    from llmrec.serve._batch import MicroBatcher

    svc = Service(artifacts)
    batcher = MicroBatcher(svc, window=0.05)
    good = {"history": [str(artifacts.dataset.items.ids[0])]}
    bad = {"history": ["no-such-item"]}

    async def together():
        return await asyncio.gather(*(batcher.recommend(**r) for r in (good, bad, good)),
                                    return_exceptions=True)

    a, err, b = asyncio.run(together())
    assert isinstance(err, RequestError) and err.field == "history[0]"
    _same(a, svc.recommend(**good))
    _same(b, svc.recommend(**good))
    assert batcher.running == 0


def test_concurrent_http_requests_equal_one_by_one(din):
    """Real uvicorn server, 24 requests in flight at once over real sockets."""
    import httpx

    from llmrec.serve import Service, create_app

    from .conftest import LiveServer

    art = din[0]
    app = create_app(art)
    reqs = _requests(art)[:24]
    want = [Service(art).recommend(**r) for r in reqs]

    async def fire(url):
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            return await asyncio.gather(*(http.post("/recommend", json=_body(r))
                                          for r in reqs))

    with LiveServer(app) as server:
        got = asyncio.run(fire(server.url))
    assert all(r.status_code == 200 for r in got)
    for w, r in zip(want, got):
        _same(w, r.json())
    stats = app.state.batcher.stats
    assert stats["rank"][1] == len(reqs) - _stored(art, reqs)   # the rest: prestored


def test_exact_search_is_the_brute_force_top_k_and_hnsw_agrees(serve_run, artifacts):
    """``index = "auto"`` searches a small catalogue exactly: the top-k of the allowed items
    by inner product, best first (checked against a full sort); FAISS HNSW (``index =
    "hnsw"``) finds nearly the same items."""
    from llmrec.serve import ServeConfig, load_artifacts
    from llmrec.serve._channels import search

    assert artifacts.index is None and artifacts.info["index"] == "flat"
    hnsw = load_artifacts(serve_run, ServeConfig(encoder="hashing", index="hnsw"))
    assert hnsw.index is not None and hnsw.info["index"] == "hnsw"
    rng = np.random.default_rng(0)
    v = artifacts.vectors
    overlap = []
    for _ in range(20):
        q = v[rng.choice(len(v), 3)].mean(0, keepdims=True)
        allowed = rng.random(len(v)) > 0.3
        items, scores = search(artifacts, q, 20, allowed)
        full = (v @ q[0]).astype(np.float64)
        ref = [i for i in np.argsort(-full, kind="stable") if allowed[i]][:20]
        assert items.tolist() == ref
        np.testing.assert_allclose(scores, full[ref], rtol=1e-5)
        assert allowed[items].all() and (np.diff(scores) <= 0).all()
        approx, _ = search(hnsw, q, 20, allowed)
        assert allowed[approx].all()
        overlap.append(len(set(approx.tolist()) & set(ref)) / 20)
    assert np.mean(overlap) >= 0.9, overlap


def test_popularity_channel_is_the_most_popular_allowed_items(artifacts):
    from llmrec.serve._channels import Query, popularity

    rng = np.random.default_rng(1)
    counts = artifacts.popularity
    for _ in range(10):
        allowed = rng.random(artifacts.n_items) > 0.5
        items, scores = popularity(artifacts, Query(np.zeros(0, np.int64), allowed), 30)
        ref = sorted(np.flatnonzero(allowed).tolist(), key=lambda i: (-counts[i], i))[:30]
        assert items.tolist() == ref
        np.testing.assert_allclose(scores, np.log1p(counts[ref]), rtol=1e-6)


def test_fusion_of_hand_made_channel_outputs():
    """Min-max normalised, weighted, summed; channel of origin = the largest term; ties by
    item index; an item a channel did not retrieve gets 0 from it (its worst candidate too)."""
    from llmrec.serve._channels import fuse

    w = {"sequential": 1.0, "ann": 0.5, "popularity": 0.1}
    parts = [(0, np.array([7, 3, 5]), np.array([3.0, 2.0, 1.0])),      # norm 1, .5, 0
             (1, np.array([5, 9]), np.array([0.9, 0.1])),                # norm 1, 0
             (2, np.array([3]), np.array([4.0]))]                        # single: 1
    c = fuse(parts, w)
    expected = {7: 1.0, 3: 0.5 + 0.1, 5: 0.0 + 0.5, 9: 0.0}
    assert c.items.tolist() == [7, 3, 5, 9]
    np.testing.assert_allclose(c.fused, [expected[i] for i in c.items.tolist()])
    assert c.origin.tolist() == [0, 0, 1, 1]     # 9: only the ANN channel retrieved it
    np.testing.assert_allclose(c.terms[1], [0.5, 0.0, 0.1])
