"""The cloner's dilated conv with the two-convolution backward: gradients against autograd and gradcheck."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mixfx.models.dilated_conv import dilated_conv1d


@pytest.mark.parametrize("batch,c_in,c_out,k,d,t", [(1, 2, 16, 15, 1, 300), (3, 16, 16, 15, 8, 500),
                                                     (2, 4, 3, 5, 33, 97), (2, 3, 5, 1, 1, 64)])
def test_gradients_equal_autograd_of_plain_conv1d(batch, c_in, c_out, k, d, t):
    g = torch.Generator().manual_seed(k * d + t)
    x = torch.randn(batch, c_in, t + (k - 1) * d, generator=g, dtype=torch.float64)
    w = torch.randn(c_out, c_in, k, generator=g, dtype=torch.float64)
    up = torch.randn(batch, c_out, t, generator=g, dtype=torch.float64)
    xa, wa = x.clone().requires_grad_(), w.clone().requires_grad_()
    F.conv1d(xa, wa, dilation=d).backward(up)  # the reference: PyTorch's own backward
    xb, wb = x.clone().requires_grad_(), w.clone().requires_grad_()
    y = dilated_conv1d(xb, wb, d)
    assert torch.equal(y.detach(), F.conv1d(x, w, dilation=d))
    y.backward(up)
    assert torch.allclose(xb.grad, xa.grad, rtol=1e-10, atol=1e-10)
    assert torch.allclose(wb.grad, wa.grad, rtol=1e-10, atol=1e-10)


def test_gradcheck_against_finite_differences():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 40, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn(4, 3, 5, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, b: dilated_conv1d(a, b, 3), (x, w))


def test_only_the_needed_gradient_and_no_graph_without_grad():
    x = torch.randn(1, 2, 50)
    w = torch.randn(2, 2, 3, requires_grad=True)
    dilated_conv1d(x, w, 2).sum().backward()
    assert w.grad is not None and x.grad is None
    with torch.no_grad():
        assert dilated_conv1d(x, w, 2).grad_fn is None
