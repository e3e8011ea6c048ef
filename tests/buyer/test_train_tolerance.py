"""The default tolerance of a train order follows the size of the held-out set (and of the
miner's validation split, whose figure the card carries): a binomial confidence bound, never
below 0.05. The numbers by hand: z = 1.645, p = 0.5, so z*sqrt(p(1-p)) = 0.8225."""

from __future__ import annotations

import pytest

from tests.buyer.conftest import context


@pytest.mark.parametrize("held, val, expected", [
    (17, 4, 0.457),      # 0.8225 * sqrt(1/17 + 1/4): the netns case (card 0.83 on 4, held-out 0.43 on 17)
    (17, None, 0.199),   # 0.8225 / sqrt(17)
    (200, 180, 0.085),   # 0.8225 * sqrt(1/200 + 1/180)
    (2000, 1800, 0.05),  # 0.027: the floor
    (1, None, 0.823),
    (1, 1, 1.0),         # 1.163, capped
])
def test_the_default_tolerance_is_a_binomial_bound_on_the_two_image_counts(held, val, expected):
    from app.orders.train import default_tolerance

    assert default_tolerance(held, val) == expected


def test_the_bound_narrows_as_the_held_out_set_grows_and_an_empty_one_is_refused():
    from app.orders.train import DEFAULT_TOLERANCE, default_tolerance

    figures = [default_tolerance(n, n) for n in (5, 20, 80, 320, 1280, 5120)]
    assert figures == sorted(figures, reverse=True) and figures[-1] == DEFAULT_TOLERANCE
    with pytest.raises(ValueError, match="at least one held-out image"):
        default_tolerance(0)


def test_the_planned_split_matches_the_trainers_validation_share():
    from app.orders.train import VAL_FRACTION, planned_tolerance
    from jobs.train.trainer import TrainConfig

    assert VAL_FRACTION == TrainConfig.model_fields["val_fraction"].default
    # 85 images, a fifth kept back: 17 held out, 68 sent, 7 of them the miner's validation split
    assert planned_tolerance(85, {}) == (0.369, 17, 7)
    assert planned_tolerance(85, {"val_fraction": 0.25}) == (0.282, 17, 17)
    assert planned_tolerance(40, {}, held_out=17) == (0.457, 17, 4)  # a held-out folder of its own
    assert planned_tolerance(40, {"val_fraction": 0}, held_out=17) == (0.199, 17, 0)


def test_a_train_order_without_a_tolerance_gets_the_one_for_its_held_out_images(tmp_path):
    from app.orders.train import default_tolerance, train_order
    from app.runtime import runtime_config
    from jobs.train.synthetic import make_shapes_dataset

    shapes = make_shapes_dataset(tmp_path / "ds", n_images=20, size=(64, 48), seed=2)
    store = runtime_config(context(tmp_path / "home"), local_chain=True).store
    params = {"arch": "centernet-xs", "epochs": 1, "batch": 4}
    job, _ = train_order([shapes], params=params, store=store, work_dir=tmp_path / "w", holdout_fraction=0.25, seed=1)
    assert (job["images"], job["holdout"]["images"]) == (15, 5)
    assert job["tolerance"] == default_tolerance(5, 2) == 0.688  # 5 held out; 2 of the 15 validate
    job, _ = train_order([shapes], params=params, store=store, work_dir=tmp_path / "w2", holdout_fraction=0.25,
                         seed=1, tolerance=0.1)
    assert job["tolerance"] == 0.1  # the buyer's own figure stands
