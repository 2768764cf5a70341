"""The HTTP API on a real trained run: recommendations, fallbacks, filters, errors, metrics."""

from __future__ import annotations

import re

import httpx
import numpy as np
import pytest


def recommend(client, **body):
    r = client.post("/recommend", json=body)
    assert r.status_code == 200, r.text
    return r.json()


def seen(artifacts, user_id: str) -> set[str]:
    ds = artifacts.dataset
    return set(ds.items.to_raw(ds.history(user_id)).tolist())


def test_known_user_gets_n_unseen_items_with_titles_channels_and_explanations(client,
                                                                            artifacts):
    out = recommend(client, user_id="1", n=10)
    items = out["items"]
    assert out["known_user"] and out["history_source"] == "stored" and not out["cold_start"]
    assert [it["rank"] for it in items] == list(range(1, 11))
    assert len({it["item_id"] for it in items}) == 10
    assert not {it["item_id"] for it in items} & seen(artifacts, "1")
    titles = artifacts.dataset.item_titles()
    for it in items:
        assert it["title"] == titles[artifacts.dataset.items.index(it["item_id"])]
        assert it["channel"] in ("sequential", "ann", "popularity")
        assert it["channel"] in it["channels"]
        assert it["explanation"] and it["explanation_source"] == "metadata"
    assert out["explanations"] == "metadata"       # the test home has no knowledge store
    scores = [it["score"] for it in items]
    assert scores == sorted(scores, reverse=True)
    assert out["ranker"] == "fused"


def test_exclude_seen_false_lets_history_items_back(client, artifacts):
    history = seen(artifacts, "1")
    out = recommend(client, user_id="1", n=50, exclude_seen=False)
    assert {it["item_id"] for it in out["items"]} & history


def test_explicit_exclude_list_is_honoured(client):
    first = recommend(client, user_id="2", n=5)["items"]
    banned = [it["item_id"] for it in first[:3]]
    again = recommend(client, user_id="2", n=5, exclude=banned)["items"]
    assert not {it["item_id"] for it in again} & set(banned)


def test_unknown_user_without_history_gets_the_most_popular_items(client, artifacts):
    out = recommend(client, user_id="no-such-user", n=5)
    assert out["cold_start"] == "popularity" and not out["known_user"]
    pop = artifacts.popularity
    expected = np.lexsort((np.arange(len(pop)), -pop))[:5]
    assert [it["item_id"] for it in out["items"]] == \
        artifacts.dataset.items.to_raw(expected).tolist()
    assert all(it["channel"] == "popularity" for it in out["items"])


def test_unknown_user_with_history_is_served_from_that_history(client):
    history = ["50", "172", "181"]                      # the Star Wars trilogy
    out = recommend(client, user_id="new-user", history=history, n=10)
    assert out["cold_start"] == "history" and out["history_length"] == 3
    ids = {it["item_id"] for it in out["items"]}
    assert len(ids) == 10 and not ids & set(history)
    assert {"sequential", "ann"} & {it["channel"] for it in out["items"]}
    by_history = recommend(client, history=[50, 172, 181], n=10)     # ints are ids too
    assert [it["item_id"] for it in by_history["items"]] == [it["item_id"] for it in out["items"]]


def test_channel_weights_select_the_channels(client):
    only_ann = recommend(client, user_id="1", weights={"sequential": 0, "popularity": 0,
                                                       "ann": 1})
    assert {it["channel"] for it in only_ann["items"]} == {"ann"}
    only_pop = recommend(client, user_id="1", weights={"sequential": 0, "ann": 0,
                                                       "popularity": 1})
    assert {it["channel"] for it in only_pop["items"]} == {"popularity"}
    assert only_pop["items"][0]["explanation"].startswith("Popular")


def test_genre_and_year_filters(client):
    out = recommend(client, user_id="1", n=10, filters={"genres": ["Horror"]})
    assert len(out["items"]) == 10
    assert all("Horror" in it["genres"] for it in out["items"])
    out = recommend(client, user_id="1", n=10, filters={"year_min": 1990, "year_max": 1994})
    assert all(1990 <= it["year"] <= 1994 for it in out["items"])


def test_diversity_rerank_lowers_similarity_within_the_list(client, artifacts):
    def mean_pairwise(items):
        idx = artifacts.dataset.items.lookup([it["item_id"] for it in items])
        v = artifacts.vectors[idx]
        sim = v @ v.T
        return (sim.sum() - np.trace(sim)) / (len(idx) * (len(idx) - 1))

    plain = recommend(client, user_id="3", n=10, diversity=0)["items"]
    diverse = recommend(client, user_id="3", n=10, diversity=0.9)["items"]
    assert [it["item_id"] for it in plain] != [it["item_id"] for it in diverse]
    assert mean_pairwise(diverse) < mean_pairwise(plain)


def test_mmr_by_hand():
    from llmrec.serve import mmr

    vectors = np.array([[1, 0], [1, 0], [0, 1]], dtype=np.float32)   # items 0 and 1 identical
    relevance = np.array([1.0, 0.9, 0.5])
    assert mmr(np.arange(3), relevance, vectors, 2, 0.0).tolist() == [0, 1]
    assert mmr(np.arange(3), relevance, vectors, 2, 0.6).tolist() == [0, 2]


def test_similar_items_match_an_exact_search(client, artifacts):
    out = client.get("/items/50/similar", params={"n": 10}).json()
    assert out["item"]["title"] == "Star Wars"
    got = [it["item_id"] for it in out["similar"]]
    assert "50" not in got and len(got) == 10
    i = artifacts.dataset.items.index("50")
    cos = artifacts.vectors @ artifacts.vectors[i]
    cos[i] = -np.inf
    exact = artifacts.dataset.items.to_raw(np.argsort(-cos, kind="stable")[:10]).tolist()
    assert len(set(got) & set(exact)) >= 9                       # HNSW recall@10 on this
    scores = [it["score"] for it in out["similar"]]
    assert scores == sorted(scores, reverse=True)
    assert scores[0] == pytest.approx(float(cos.max()), abs=1e-4)


def test_item_and_user_lookups(client, artifacts):
    item = client.get("/items/50").json()
    assert item["title"] == "Star Wars" and "Sci-Fi" in item["genres"]
    assert item["popularity"] == int(artifacts.popularity[artifacts.dataset.items.index("50")])
    user = client.get("/users/1", params={"limit": 5}).json()
    assert user["interactions"] == len(artifacts.dataset.history("1"))
    assert len(user["history"]) == 5 and all(1 <= h["rating"] <= 5 for h in user["history"])
    last = artifacts.dataset.items.id(int(artifacts.dataset.history("1")[-1]))
    assert user["history"][0]["item_id"] == last                  # newest first
    users = client.get("/users", params={"limit": 3}).json()
    assert users["total"] == artifacts.dataset.n_users and len(users["users"]) == 3


@pytest.mark.parametrize("body, field", [
    ({"user_id": "1", "n": 1_000_000}, "n"),
    ({"user_id": "1", "n": 0}, "n"),
    ({"user_id": "1", "n": "ten"}, "n"),
    ({"history": ["1"] * 5000}, "history"),
    ({"user_id": "1", "exclude": ["1"] * 5000}, "exclude"),
    ({}, "body"),
    ({"user_id": "1", "colour": "red"}, "colour"),
    ({"user_id": ["1"]}, "user_id"),
    ({"history": [None]}, "history[0]"),
    ({"user_id": "1", "diversity": 2}, "diversity"),
    ({"user_id": "1", "weights": {"ann": -1}}, "weights.ann"),
    ({"user_id": "1", "weights": {"sequential": 0, "ann": 0, "popularity": 0}}, "weights"),
    ({"user_id": "1", "filters": {"genres": ["Nope"]}}, "filters.genres[0]"),
    ({"history": ["1", "2", "999999"]}, "history[2]"),
    ({"user_id": "1", "exclude": ["x"]}, "exclude[0]"),
])
def test_bad_requests_are_4xx_json_naming_the_field(client, body, field):
    r = client.post("/recommend", json=body)
    assert 400 <= r.status_code < 500, r.text
    err = r.json()
    named = [f["field"] for f in err.get("fields", [])] + [err.get("field")]
    assert any(n is not None and (n == field or n.startswith(field)) for n in named), err


def test_malformed_and_oversized_bodies(client, artifacts):
    r = client.post("/recommend", content=b"{not json", headers={"content-type":
                                                                  "application/json"})
    assert r.status_code == 400 and r.json()["field"] == "body"
    assert r.json()["error"].startswith("request body is not valid JSON")
    big = b'{"history": [' + b'"1",' * 400_000 + b'"1"]}'
    r = client.post("/recommend", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["field"] == "body"
    assert client.get("/items/999999").status_code == 404
    r = client.get("/items/50/similar", params={"n": 10_000})
    assert r.status_code == 422 and r.json()["fields"][0]["field"] == "n" == r.json()["field"]
    r = client.get("/nowhere")
    assert r.status_code == 404 and r.json() == {"error": "no such path: /nowhere",
                                                 "field": "path"}


def test_metrics_count_requests_in_prometheus_text(client):
    def count(text: str, route: str, status: str) -> float:
        m = re.search(r'llmrec_http_requests_total\{method="[A-Z]+",route="%s",status="%s"\} '
                      r"([0-9.e+]+)" % (re.escape(route), status), text)
        return float(m.group(1)) if m else 0.0

    before = client.get("/metrics").text
    for _ in range(3):
        recommend(client, user_id="5", n=3)
    client.post("/recommend", json={"user_id": "5", "n": 0})
    r = client.get("/metrics")
    assert r.headers["content-type"].startswith("text/plain")
    after = r.text
    assert count(after, "/recommend", "200") - count(before, "/recommend", "200") == 3
    assert count(after, "/recommend", "422") - count(before, "/recommend", "422") == 1
    assert "llmrec_http_request_seconds_bucket" in after
    assert re.search(r'llmrec_recommended_items_total\{channel="\w+"\} [1-9]', after)


def test_healthz_info_and_docs(client, artifacts):
    from llmrec import __version__

    assert client.get("/healthz").json() == {"status": "ok", "version": __version__}
    h = client.get("/info").json()
    assert h["status"] == "ok" and h["items"] == artifacts.n_items
    assert "fused" in h["ranker"] and "metadata" in h["explanations"]
    assert h["run_dir"] == str(artifacts.run.run_dir) and h["pid"] > 0
    assert client.get("/docs").status_code == 200
    schema = client.get("/openapi.json").json()
    assert "/recommend" in schema["paths"] and "/items/{item_id}/similar" in schema["paths"]


def test_api_key_is_required_when_configured(artifacts):
    from dataclasses import replace

    from fastapi.testclient import TestClient

    from llmrec.serve import create_app

    art = replace(artifacts, config=replace(artifacts.config, api_key="s3cret"))
    with TestClient(create_app(art)) as c:
        for public in ("/healthz", "/", "/docs", "/redoc", "/openapi.json",
                       "/static/page.js", "/static/vendor/swagger-ui-bundle.js"):
            assert c.get(public).status_code == 200, public
        assert c.get("/info").status_code == 401
        assert c.get("/info", headers={"X-API-Key": "s3cret"}).json()["pid"] > 0
        schema = c.get("/openapi.json").json()         # Swagger UI's Authorize button
        assert schema["components"]["securitySchemes"]["apiKey"]["name"] == "X-API-Key"
        r = c.post("/recommend", json={"user_id": "1"})
        assert r.status_code == 401 and r.json()["field"] == "x-api-key"
        assert c.post("/recommend", json={"user_id": "1"},
                      headers={"X-API-Key": "wrong"}).status_code == 401
        assert c.post("/recommend", json={"user_id": "1"},
                      headers={"X-API-Key": "s3cret"}).status_code == 200
        assert c.get("/metrics").status_code == 401


def test_real_uvicorn_server_on_loopback(live_server):
    with httpx.Client(base_url=live_server.url, timeout=10) as http:
        assert http.get("/healthz").json()["status"] == "ok"
        r = http.post("/recommend", json={"user_id": "7", "n": 3})
        assert r.status_code == 200 and len(r.json()["items"]) == 3
        r = http.post("/recommend", json={"user_id": "7", "n": -1})
        assert r.status_code == 422
        assert "text/html" in http.get("/").headers["content-type"]


def test_prestored_user_scores_equal_scoring_the_history_on_request(client, artifacts):
    assert artifacts.user_scores is not None
    history = artifacts.dataset.items.to_raw(artifacts.dataset.history("4")).tolist()
    stored = recommend(client, user_id="4", n=20)
    explicit = recommend(client, user_id="4", history=history, n=20)
    assert stored["history_source"] == "stored" and explicit["history_source"] == "request"
    assert [it["item_id"] for it in stored["items"]] == \
        [it["item_id"] for it in explicit["items"]]
    for a, b in zip(stored["items"], explicit["items"]):
        assert a["score"] == pytest.approx(b["score"], abs=1e-4)


def test_info_counts_the_batched_forwards(client):
    """/info reports this worker's batched forwards: an explicit history runs one sequential
    forward; a known user's stored history runs none (its scores are prestored)."""
    def forwards():
        return client.get("/info").json()["batches"].get("sequential", {}).get("forwards", 0)

    before = forwards()
    assert client.post("/recommend", json={"user_id": "1", "n": 3}).status_code == 200
    assert forwards() == before
    assert client.post("/recommend", json={"history": ["50", "172"], "n": 3}).status_code == 200
    assert forwards() == before + 1
