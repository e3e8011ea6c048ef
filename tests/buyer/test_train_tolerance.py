"""The default tolerance of a train order follows the size of the held-out set (and of the
miner's validation split, whose figure the card carries): a binomial confidence bound (a
heuristic for mAP), never below 0.05. The numbers by hand: z = 2.33, p = 0.5, so
z*sqrt(p(1-p)) = 1.165. It only guards against an overstated card: the order's least metric is
required, and a default so wide that it says little (WIDE_TOLERANCE) is refused unless the
buyer names a tolerance."""

from __future__ import annotations

import pytest

from tests.buyer.conftest import context


@pytest.mark.parametrize("held, val, expected", [
    (17, 4, 0.647),      # 1.165 * sqrt(1/17 + 1/4): the netns case (card 0.83 on 4, held-out 0.43 on 17)
    (17, None, 0.283),   # 1.165 / sqrt(17)
    (200, 180, 0.12),    # 1.165 * sqrt(1/200 + 1/180)
    (2000, 1800, 0.05),  # 0.038: the floor
    (100, None, 0.117),  # 1.165 / 10
    (1, None, 1.0),      # 1.165, capped
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
    assert planned_tolerance(85, {}) == (0.523, 17, 7)
    assert planned_tolerance(85, {"val_fraction": 0.25}) == (0.4, 17, 17)
    assert planned_tolerance(40, {}, held_out=17) == (0.647, 17, 4)  # a held-out folder of its own
    assert planned_tolerance(40, {"val_fraction": 0}, held_out=17) == (0.283, 17, 0)


def test_the_check_names_the_least_metric_and_refuses_a_default_that_says_little():
    from app.orders.train import WIDE_TOLERANCE, train_terms

    assert train_terms(80, 0.226, chosen=False, min_metric=0.5) == (
        "The model is checked here on 80 held-out images and paid only if it measures at least 0.5 there, and at "
        "most 0.226 below its card's metric (the default for 80 held-out images).")
    # the same few images with a tolerance the buyer names: its choice, said so
    assert train_terms(10, 0.6, chosen=True, min_metric=0.25).endswith("at most 0.600 below its card's metric "
                                                                        "(your tolerance).")
    with pytest.raises(ValueError, match=r"^10 held-out images are too few to check a model's card \(the default "
                                         r"tolerance would be 0.64\): hold out more images, or name the tolerance"):
        train_terms(10, 0.638, chosen=False, min_metric=0.5)
    train_terms(40, WIDE_TOLERANCE - 0.001, chosen=False, min_metric=0.5)  # just under the line: posted
    with pytest.raises(ValueError, match="too few"):
        train_terms(40, WIDE_TOLERANCE, chosen=False, min_metric=0.5)
    # no least metric (or 0, which is none): a card that claims 0.0 would be paid; refused at any tolerance
    for least in (None, 0.0):
        with pytest.raises(ValueError, match="least"):
            train_terms(2000, 0.05, chosen=True, min_metric=least)


def test_a_train_order_without_a_tolerance_gets_the_one_for_its_held_out_images(tmp_path):
    from app.orders.train import default_tolerance, train_order
    from app.runtime import runtime_config
    from jobs.train.synthetic import make_shapes_dataset

    shapes = make_shapes_dataset(tmp_path / "ds", n_images=160, size=(48, 36), seed=2)
    store = runtime_config(context(tmp_path / "home"), local_chain=True).store
    params = {"arch": "centernet-xs", "epochs": 1, "batch": 4, "val_fraction": 0.5}
    job, _ = train_order([shapes], params=params, store=store, work_dir=tmp_path / "w", holdout_fraction=0.5, seed=1,
                         min_metric=0.4)
    assert (job["images"], job["holdout"]["images"], job["min_metric"]) == (80, 80, 0.4)
    assert job["tolerance"] == default_tolerance(80, 40) == 0.226  # 80 held out; 40 of the 80 sent validate
    # a fifth held out: 32 images, 13 validate, 0.384: too wide to mean much, refused before anything is made
    small = {**params, "val_fraction": 0.1}
    with pytest.raises(ValueError, match=r"^32 held-out images are too few .* \(the default tolerance would be 0.38\)"):
        train_order([shapes], params=small, store=store, work_dir=tmp_path / "w2", holdout_fraction=0.2, seed=1,
                    min_metric=0.4)
    assert not (tmp_path / "w2" / "data").exists()
    job, _ = train_order([shapes], params=small, store=store, work_dir=tmp_path / "w3", holdout_fraction=0.2,
                         seed=1, tolerance=0.1, min_metric=0.4)
    assert job["tolerance"] == 0.1  # the buyer's own figure stands
