"""Box utilities against hand-computed cases."""

import math

import pytest
import torch

from jobs.train.boxes import (batched_nms, box_iou, centernet_decode, centernet_encode, gaussian_radius,
                              letterbox_params, nms, unletterbox, xywh_to_xyxy, xyxy_to_xywh)


def test_iou_of_hand_computed_pairs():
    a = torch.tensor([[0.0, 0, 2, 2], [0, 0, 1, 1]])
    b = torch.tensor([[1.0, 1, 3, 3], [0, 0, 2, 2], [5, 5, 6, 6]])
    iou = box_iou(a, b)
    # [0,0,2,2] vs [1,1,3,3]: overlap 1, union 4 + 4 - 1 = 7
    assert iou[0, 0].item() == pytest.approx(1 / 7)
    assert iou[0, 1].item() == pytest.approx(1.0)
    assert iou[0, 2].item() == 0.0
    # [0,0,1,1] inside [0,0,2,2]: 1 / 4
    assert iou[1, 1].item() == pytest.approx(0.25)
    assert iou[1, 0].item() == 0.0  # touching at one corner only


def test_iou_of_empty_boxes_is_zero_not_nan():
    z = torch.tensor([[1.0, 1, 1, 1]])
    assert box_iou(z, z).item() == 0.0


def test_nms_keeps_the_best_of_each_overlapping_group():
    boxes = torch.tensor([[0.0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 9]])
    scores = torch.tensor([0.9, 0.8, 0.7, 0.95])
    # IoU(box3, box0) = 90/100 = 0.9; IoU(box0, box1) = 81/119 = 0.68; IoU(box3, box1) = 72/(90+100-72) = 0.61
    assert nms(boxes, scores, 0.5).tolist() == [3, 2]
    assert nms(boxes, scores, 0.65).tolist() == [3, 1, 2]
    assert nms(boxes, scores, 0.95).tolist() == [3, 0, 1, 2]
    assert nms(torch.zeros((0, 4)), torch.zeros(0), 0.5).tolist() == []


def test_batched_nms_never_suppresses_across_classes():
    boxes = torch.tensor([[0.0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    classes = torch.tensor([0, 1, 0])
    assert batched_nms(boxes, scores, classes, 0.5).tolist() == [0, 1]


def test_xywh_round_trip():
    b = torch.tensor([[10.0, 20, 30, 40]])
    assert xywh_to_xyxy(b).tolist() == [[10, 20, 40, 60]]
    assert xyxy_to_xywh(xywh_to_xyxy(b)).tolist() == b.tolist()


def test_centernet_encoding_by_hand():
    # box 10..30 x 20..44: centre (20, 32) -> /4 = (5, 8) exactly, size 20x24
    cell, off, size = centernet_encode(torch.tensor([[10.0, 20, 30, 44]]), stride=4)
    assert cell.tolist() == [[5, 8]] and off.tolist() == [[0, 0]] and size.tolist() == [[20, 24]]
    # centre (21, 33.5) -> (5.25, 8.375): cell (5, 8), offset (0.25, 0.375)
    b = torch.tensor([[11.0, 21, 31, 46]])
    cell, off, size = centernet_encode(b, 4)
    assert cell.tolist() == [[5, 8]] and off.tolist() == [[0.25, 0.375]]
    assert torch.allclose(centernet_decode(cell, off, size, 4), b)


def test_gaussian_radius_grows_with_the_box():
    r = gaussian_radius(torch.tensor([4.0, 8.0, 16.0]), torch.tensor([4.0, 8.0, 16.0]))
    assert r[0] < r[1] < r[2]
    # a 10x10 box, IoU 0.7: the three CornerNet cases give 19.07, 36.73 and
    # (-28 + sqrt(784 + 336)) / 2 = 2.733 (a = 2.8, b = -28, c = -30); the smallest wins
    r10 = gaussian_radius(torch.tensor([10.0]), torch.tensor([10.0])).item()
    assert r10 == pytest.approx((-28 + math.sqrt(1120)) / 2, rel=1e-5)
    assert r10 == pytest.approx(2.733, abs=1e-3)


def test_letterbox_maps_boxes_back_to_the_source():
    nw, nh, px, py = letterbox_params(640, 480, 320, 320)
    assert (nw, nh, px, py) == (320, 240, 0, 40)
    src = torch.tensor([[100.0, 50, 300, 450]])
    inp = src * 0.5 + torch.tensor([px, py, px, py])
    assert torch.allclose(unletterbox(inp, nw / 640, nh / 480, px, py, 640, 480), src)
