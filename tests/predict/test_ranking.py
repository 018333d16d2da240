"""predict on a ranker: a score per image, and each query's order from a query,item CSV."""

from __future__ import annotations

import torch

from losslab.predict import predict
from tests.predict.support import column, read_csv, save_images

KIND = "ranking"


def test_scores_and_per_query_order(trained, tmp_path):
    query = trained.datamodule.splits["test"][0][0]  # one list (L, C, H, W) of uint8 images
    paths = save_images(query, tmp_path / "items")
    lines = ["query,item"] + [f"q{i // 5},items/{p.name}" for i, p in enumerate(paths)]
    (tmp_path / "queries.csv").write_text("\n".join(lines) + "\n")
    with torch.no_grad():
        expected = trained.task(trained.datamodule.standardize(query)[None])[0].double()
    predict(trained.ckpt, tmp_path / "queries.csv", tmp_path / "out", batch_size=3)
    scores = {r["path"]: float(r["score"]) for r in read_csv(tmp_path / "out" / "scores.csv")}
    got = torch.tensor(
        [scores[str(tmp_path / "items" / p.name)] for p in paths], dtype=torch.float64
    )
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    ranking = read_csv(tmp_path / "out" / "ranking.csv")
    for q in ("q0", "q1"):
        rows = [r for r in ranking if r["query"] == q]
        assert [int(r["rank"]) for r in rows] == list(range(1, len(rows) + 1))
        members = range(0, 5) if q == "q0" else range(5, len(paths))
        order = sorted(members, key=lambda i: -expected[i].item())
        assert [r["path"] for r in rows] == [str(tmp_path / "items" / paths[i].name) for i in order]
    # a folder: every image scored and ranked together
    predict(trained.ckpt, tmp_path / "items", tmp_path / "folder")
    ranked = read_csv(tmp_path / "folder" / "scores.csv")
    assert [int(r["rank"]) for r in ranked] == list(range(1, len(paths) + 1))
    torch.testing.assert_close(
        column(ranked, ["score"]).flatten(),
        expected.sort(descending=True).values,
        atol=1e-5,
        rtol=1e-5,
    )
