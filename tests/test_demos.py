"""The 2-D margin demo runs in seconds and draws its figure where it is told."""

from lt_imbalance.demos.margins_2d import margin_demo


def test_two_d_demo_runs_in_seconds_and_draws(tmp_path):
    scores = margin_demo(tmp_path / "demo.png", epochs=3)
    assert (tmp_path / "demo.png").stat().st_size > 10_000
    assert set(scores) >= {"ERM", "CC-LS (eps 0 -> 0.3)"} and all(0 <= s <= 1 for s in scores.values())
