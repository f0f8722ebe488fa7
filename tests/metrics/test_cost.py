"""Cost accounting: multiply-adds and parameters against hand counts, memory and time on a toy workload."""

import pytest
import torch
from torch import nn

from nasbench.metrics.cost import PhaseMeter
from nasbench.metrics.flops import count_mult_adds, params_m
from nasbench.spaces.cnn import PUBLISHED
from nasbench.spaces.cnn_network import CnnNetwork


def test_conv_and_depthwise_conv_mult_adds_by_hand():
    x = torch.randn(2, 3, 8, 8)
    conv = nn.Conv2d(3, 8, 3, padding=1, bias=False)
    # per output value 3 in-channels x 3 x 3 taps; 8 x 8 x 8 outputs per image, 2 images
    assert count_mult_adds(conv, (x,))["forward_mult_adds"] == 2 * 8 * 8 * 8 * 3 * 9
    depthwise = nn.Conv2d(16, 16, 3, padding=1, groups=16, bias=False)
    # one in-channel per output channel: 9 taps per output value
    assert count_mult_adds(depthwise, (torch.randn(1, 16, 8, 8),))["forward_mult_adds"] == 16 * 8 * 8 * 9
    linear = nn.Linear(10, 4)
    out = count_mult_adds(linear, (torch.randn(5, 10),), backward=True)
    assert out["forward_mult_adds"] == 5 * 10 * 4
    assert out["backward_mult_adds"] == 2 * 5 * 10 * 4 and "2x forward" in out["backward_method"]


def test_params_m_excludes_the_auxiliary_head():
    net = CnnNetwork(PUBLISHED["DARTS_V2"], channels=4, layers=3, num_classes=10, auxiliary=True)
    aux = sum(p.numel() for p in net.auxiliary.parameters())
    assert aux > 0
    assert params_m(net) * 1e6 == pytest.approx(sum(p.numel() for p in net.parameters()) - aux)


def test_darts_v2_has_the_published_size():
    # Liu et al. 2019, table 1: DARTS (second order) on CIFAR-10, 20 cells and 36 channels: 3.3M params
    net = CnnNetwork(PUBLISHED["DARTS_V2"], channels=36, layers=20, num_classes=10, auxiliary=True)
    assert params_m(net) == pytest.approx(3.3, abs=0.05)
    net.eval()
    mult_adds = count_mult_adds(net, (torch.zeros(1, 3, 32, 32),))["forward_mult_adds"]
    assert 450e6 < mult_adds < 650e6  # later papers (e.g. P-DARTS, PC-DARTS tables) list ~0.5-0.6 G


def test_phase_meter_sees_a_known_allocation():
    with PhaseMeter(torch.device("cpu")) as meter:
        block = torch.ones(64 * 2**20 // 4)  # 64 MiB of float32, written so that it is resident
        block += 1
    assert 60 <= meter.peak_mem_mib < 100
    assert meter.seconds > 0 and "cpu peak RSS" in meter.method
    del block
