"""FXEncoder / MixFXCloner structure and maths, official-checkpoint loading, our checkpoint format."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from mixfx.errors import MixfxError
from mixfx.io.checkpoint import load_model_checkpoint, save_model_checkpoint
from mixfx.models.cloner import FiLM, ClonerConfig, MixFXCloner
from mixfx.models.encoder import FXEncoder, FXEncoderConfig, SamePad1d
from mixfx.models.loading import (
    load_cloner,
    load_encoder,
    load_model,
    load_model_and_metadata,
    load_state_dict_strict,
    model_from_checkpoint,
    resolve_device,
)

KEYS_FILE = Path(__file__).resolve().parents[1] / ".." / "shared" / "reference" / "official_checkpoint_keys.txt"


def _official_shapes() -> tuple[dict[str, tuple], dict[str, tuple]]:
    enc: dict[str, tuple] = {}
    tcn: dict[str, tuple] = {}
    target = enc
    for line in KEYS_FILE.read_text().splitlines():
        if line.startswith("# TCNModel"):
            target = tcn
        m = re.match(r"^(\S+) \[([\d, ]*)\]$", line.strip())
        if m:
            target[m.group(1)] = tuple(int(v) for v in m.group(2).split(",") if v.strip())
    return enc, tcn


def _randomize(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give BN running stats / affine params non-trivial values so that eval outputs depend on them."""
    g = torch.Generator().manual_seed(seed)
    for name, buf in model.named_buffers():
        if name.endswith("running_mean"):
            buf.copy_(0.1 * torch.randn(buf.shape, generator=g))
        elif name.endswith("running_var"):
            buf.copy_(0.5 + torch.rand(buf.shape, generator=g))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "batch_norm" in name or ".bn." in name:
                p.copy_((1.0 if name.endswith("weight") else 0.0) + 0.1 * torch.randn(p.shape, generator=g))
    return model.eval()


# ------------------------------------------------------------------------------------ structure


@pytest.mark.skipif(not KEYS_FILE.is_file(), reason="shared reference key list not available")
def test_state_dict_names_and_shapes_match_official_key_list():
    enc_ref, tcn_ref = _official_shapes()
    assert len(enc_ref) == 168 and len(tcn_ref) == 128
    with torch.device("meta"):
        enc, tcn = FXEncoder(FXEncoderConfig.paper()), MixFXCloner(ClonerConfig.paper())
    assert {k: tuple(v.shape) for k, v in enc.state_dict().items()} == enc_ref
    assert {k: tuple(v.shape) for k, v in tcn.state_dict().items()} == tcn_ref


def test_paper_sizes_parameter_counts_and_receptive_field():
    with torch.device("meta"):
        enc, tcn = FXEncoder(), MixFXCloner()
    # totals computed independently in official_code_notes.md §2.1 / §3
    assert sum(p.numel() for p in enc.parameters()) == 81_392_682
    assert sum(p.numel() for p in tcn.parameters()) == 10_547_970
    assert enc.dim == 2048 and enc.config.total_stride == 4096
    # 1 + 14 · (15 − 1) · (1 + 2 + … + 8192)
    assert tcn.receptive_field() == 1 + 14 * sum(2**n for n in range(14)) == 229_363


@pytest.mark.parametrize("length", [40, 3, 1])
def test_same_pad_reflects_when_possible_else_replicates(length):
    x = torch.randn(2, 3, length)
    pad = SamePad1d(10)  # (4, 5)
    if length > 5:
        ref = torch.nn.ReflectionPad1d((4, 5))(x)
    else:
        ref = torch.cat([x[..., :1].expand(-1, -1, 4), x, x[..., -1:].expand(-1, -1, 5)], dim=-1)
    assert torch.equal(pad(x), ref)


def _manual_conv_layer(layer, x, stride):
    conv, bn = layer.conv1d.conv1d, layer.conv1d.batch_norm
    k = conv.kernel_size[0]
    xp = torch.nn.ReflectionPad1d(((k - 1) // 2, k - 1 - (k - 1) // 2))(x)
    y = F.conv1d(xp, conv.weight, conv.bias, stride=stride)
    y = (y - bn.running_mean[:, None]) / torch.sqrt(bn.running_var[:, None] + bn.eps) * bn.weight[:, None] + bn.bias[:, None]
    return torch.relu(y)


def test_encoder_matches_manual_official_computation():
    enc = _randomize(FXEncoder(FXEncoderConfig.tiny()))
    x = torch.randn(3, 2, 3000, generator=torch.Generator().manual_seed(1))
    h = x
    for block, stride in zip(enc.encoder, enc.config.strides):
        c1 = _manual_conv_layer(block.conv1, h, 1) + h  # residual after conv1's BN + ReLU
        h = _manual_conv_layer(block.conv2, c1, stride)
    with torch.no_grad():
        assert torch.allclose(enc.frames(x), h, atol=1e-5)
        assert torch.allclose(enc(x), h.mean(dim=-1), atol=1e-5)


@pytest.mark.parametrize("length", [1, 2, 7, 63, 64, 65, 1000])
def test_encoder_any_length(length):
    enc = _randomize(FXEncoder(FXEncoderConfig.tiny()))
    x = torch.randn(2, 2, length)
    with torch.no_grad():
        frames, z = enc.frames(x), enc(x)
    assert frames.shape == (2, 64, math.ceil(length / 64))
    assert z.shape == (2, 64) and torch.isfinite(z).all() and (z >= 0).all()


def test_encoder_rejects_bad_shapes_and_configs():
    enc = FXEncoder(FXEncoderConfig.tiny())
    for bad in (torch.zeros(2, 1000), torch.zeros(1, 1, 1000), torch.zeros(1, 2, 0)):
        with pytest.raises(MixfxError, match="expected audio"):
            enc(bad)
    with pytest.raises(MixfxError):
        FXEncoderConfig(channels=(8, 16), kernels=(3,), strides=(1, 1))
    cfg = FXEncoderConfig.tiny()
    assert FXEncoderConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(MixfxError, match="unknown keys"):
        FXEncoderConfig.from_dict({"channels": [4], "kernels": [3], "strides": [1], "width": 3})


def _manual_tcn_block(block, x, cond):
    d = block.conv1.dilation[0]
    k = block.conv1.kernel_size[0]
    y = F.conv1d(x, block.conv1.weight, padding=(k - 1) * d // 2, dilation=d)
    bn = block.bn
    y = (y - bn.running_mean[:, None]) / torch.sqrt(bn.running_var[:, None] + bn.eps) * bn.weight[:, None] + bn.bias[:, None]
    y = torch.where(y >= 0, y, 0.01 * y)
    film = cond @ block.film.film_fc.weight.t() + block.film.film_fc.bias
    c = y.shape[1]
    y = film[:, :c, None] * y + film[:, c:, None]
    # depthwise residual: output channel o reads input channel o // (C_out / C_in), scaled by res.weight[o]
    ratio = c // x.shape[1]
    res = torch.stack([block.res.weight[o, 0, 0] * x[:, o // ratio] for o in range(c)], dim=1)
    return y + res


def test_cloner_matches_manual_official_computation():
    cfg = ClonerConfig.tiny(cond_dim=6)
    psi = _randomize(MixFXCloner(cfg))
    g = torch.Generator().manual_seed(2)
    x = 0.1 * torch.randn(3, 2, 500, generator=g)
    cond = torch.randn(3, 6, generator=g)
    h = x
    for block in psi.blocks:
        h = _manual_tcn_block(block, h, cond)
    ref = torch.clamp(F.conv1d(h, psi.output.weight, psi.output.bias), -1, 1)
    with torch.no_grad():
        y = psi(x, cond)
    assert y.shape == x.shape
    assert torch.allclose(y, ref, atol=1e-5)
    assert y.abs().max() <= 1


def test_film_first_half_is_gamma_plain_not_one_plus():
    film = FiLM(cond_dim=3, channels=2)
    with torch.no_grad():
        film.film_fc.weight.zero_()
        film.film_fc.bias.copy_(torch.tensor([2.0, 3.0, -1.0, 0.5]))
    y = torch.ones(1, 2, 4)
    out = film(y, torch.zeros(1, 3))
    assert torch.allclose(out[0, 0], torch.full((4,), 2.0 - 1.0))
    assert torch.allclose(out[0, 1], torch.full((4,), 3.0 + 0.5))


def test_cloner_receptive_field_is_exact():
    cfg = ClonerConfig.tiny(cond_dim=4)
    psi = _randomize(MixFXCloner(cfg))
    n, t0 = 801, 400
    x = (0.01 * torch.randn(1, 2, n)).requires_grad_(True)
    y = psi(x, torch.randn(1, 4))
    y[0, 0, t0].backward()
    nz = torch.nonzero(x.grad.abs().sum(dim=(0, 1))).flatten()
    assert int(nz.max() - nz.min()) + 1 == psi.receptive_field() == 211
    assert int(nz.min()) == t0 - 105  # non-causal: centred


def test_causal_cloner_ignores_the_future_and_condition_broadcasts():
    psi = _randomize(MixFXCloner(ClonerConfig(n_blocks=3, kernel_size=5, channels=8, cond_dim=4, causal=True)))
    x = 0.1 * torch.randn(2, 2, 200)
    x2 = x.clone()
    x2[..., 120:] += 0.5
    cond = torch.randn(1, 4)
    with torch.no_grad():
        y, y2 = psi(x, cond), psi(x2, cond)
        assert torch.equal(y[..., :120], y2[..., :120]) and not torch.equal(y, y2)
        assert torch.allclose(psi(x, cond.expand(2, 4)), y, atol=1e-6)
        assert torch.allclose(psi(x, [cond] * 3), y, atol=1e-6)
    with pytest.raises(MixfxError, match="condition"):
        psi(x, torch.randn(3, 4))
    with pytest.raises(MixfxError, match="conditions"):
        psi(x, [cond] * 2)


# ----------------------------------------------------------------------------------- checkpoints


def _fake_official(model: torch.nn.Module, path: Path) -> Path:
    torch.save({"model": {"module." + k: v for k, v in model.state_dict().items()}, "optimizer": {}, "epoch": 0}, path)
    return path


def test_fake_official_cloner_checkpoint_loads_with_identical_outputs(tmp_path):
    # paper size: every tensor arrives unchanged (a paper-size forward pass is slow on CPU: the
    # dilated convs pad 2 · 7 · 8192 samples)
    ref = _randomize(MixFXCloner(ClonerConfig.paper()))
    psi = load_cloner(_fake_official(ref, tmp_path / "MixFXcloner_ps.pt"))
    assert not psi.training and psi.config == ClonerConfig.paper()
    own = psi.state_dict()
    assert all(torch.equal(own[k], v) for k, v in ref.state_dict().items())
    # tiny size: identical outputs
    ref = _randomize(MixFXCloner(ClonerConfig.tiny()), seed=3)
    psi = load_cloner(_fake_official(ref, tmp_path / "tiny.pt"), config=ClonerConfig.tiny())
    x, cond = 0.1 * torch.randn(2, 2, 300), torch.rand(1, 64)
    with torch.no_grad():
        assert torch.equal(psi(x, cond), ref(x, cond))


def test_fake_official_encoder_checkpoint_loads_with_identical_outputs(tmp_path):
    ref = _randomize(FXEncoder(FXEncoderConfig.tiny()))
    path = _fake_official(ref, tmp_path / "enc.pt")
    enc = load_encoder(path, config=FXEncoderConfig.tiny())
    x = torch.randn(2, 2, 999)
    with torch.no_grad():
        assert torch.equal(enc(x), ref(x))
    # a bare state dict saved from a DDP wrapper is accepted too
    torch.save({"module." + k: v for k, v in ref.state_dict().items()}, tmp_path / "bare.pt")
    with torch.no_grad():
        assert torch.equal(load_encoder(tmp_path / "bare.pt", config=FXEncoderConfig.tiny())(x), ref(x))


@pytest.mark.slow
def test_fake_official_paper_encoder_loads(tmp_path):
    torch.manual_seed(0)
    ref = _randomize(FXEncoder())
    path = _fake_official(ref, tmp_path / "FXencoder_ps.pt")
    enc = load_encoder(path)
    x = torch.randn(1, 2, 4096)
    with torch.no_grad():
        assert torch.equal(enc(x), ref(x))


def test_loader_errors_name_the_file_and_the_problem(tmp_path):
    with pytest.raises(MixfxError, match="missing.pt: checkpoint file not found"):
        load_encoder(tmp_path / "missing.pt")
    (tmp_path / "text.pt").write_text("not a checkpoint")
    with pytest.raises(MixfxError, match="text.pt: not a readable torch checkpoint"):
        load_encoder(tmp_path / "text.pt")
    good = _fake_official(MixFXCloner(ClonerConfig.tiny()), tmp_path / "tcn.pt")
    data = good.read_bytes()
    (tmp_path / "truncated.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(MixfxError, match="truncated.pt: not a readable torch checkpoint"):
        load_cloner(tmp_path / "truncated.pt")
    # a cloner file given to the encoder loader
    with pytest.raises(MixfxError, match=r"tcn.pt: expected an FXencoder, but the file looks like a MixFXcloner with 4 blocks"):
        load_encoder(good)
    # right kind, wrong size: tiny encoder weights into the paper architecture
    tiny = _fake_official(FXEncoder(FXEncoderConfig.tiny()), tmp_path / "tiny.pt")
    with pytest.raises(MixfxError, match=r"tiny.pt: weights do not fit the FXencoder .*missing keys.*shape mismatches.*"
                                         r"looks like an FXencoder with 4 blocks, channels \[8, 16, 32, 64\]"):
        load_encoder(tiny)
    torch.save({"epoch": 3, "note": "x"}, tmp_path / "noweights.pt")
    with pytest.raises(MixfxError, match="noweights.pt: no model weights found"):
        load_cloner(tmp_path / "noweights.pt")


class _Opaque:  # a non-tensor object the safe unpickler refuses
    pass


def test_unsafe_pickle_needs_allow_pickle(tmp_path):
    ref = FXEncoder(FXEncoderConfig.tiny()).eval()
    path = tmp_path / "pickled.pt"
    torch.save({"model": ref.state_dict(), "scheduler": _Opaque()}, path)
    with pytest.raises(MixfxError, match="pickled.pt: .*allow_pickle=True"):
        load_encoder(path, config=FXEncoderConfig.tiny())
    enc = load_encoder(path, config=FXEncoderConfig.tiny(), allow_pickle=True)
    x = torch.randn(1, 2, 300)
    with torch.no_grad():
        assert torch.equal(enc(x), ref(x))


def test_own_checkpoint_roundtrip_with_training_state(tmp_path):
    enc = _randomize(FXEncoder(FXEncoderConfig.tiny()))
    # optimizer / scheduler state as dicts (building a torch optimizer imports torch._dynamo: slow)
    opt_state = {"state": {0: {"step": torch.tensor(3.0), "exp_avg": torch.randn(4)}},
                 "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.999), "params": [0]}]}
    sched_state = {"T_max": 10, "eta_min": 0.0, "base_lrs": [1e-3], "last_epoch": 3, "_get_lr_called_within_step": False}
    gen = torch.Generator().manual_seed(5)
    path = save_model_checkpoint(tmp_path / "run" / "enc.pt", enc, optimizer=opt_state, scheduler=sched_state, step=7,
                                 rng={"torch": gen.get_state()}, extra={"history": [1.0, 0.5]})
    assert path.is_file() and not list(path.parent.glob("*.tmp*"))
    ckpt = load_model_checkpoint(path)
    assert ckpt.kind == "fxencoder" and ckpt.step == 7 and ckpt.extra == {"history": [1.0, 0.5]}
    assert FXEncoderConfig.from_dict(ckpt.config) == FXEncoderConfig.tiny()
    assert torch.equal(ckpt.optimizer["state"][0]["exp_avg"], opt_state["state"][0]["exp_avg"])
    assert ckpt.optimizer["param_groups"][0]["betas"] == (0.9, 0.999) and ckpt.scheduler == sched_state
    gen2 = torch.Generator()
    gen2.set_state(ckpt.rng["torch"])
    assert torch.equal(torch.rand(3, generator=gen2), torch.rand(3, generator=gen))
    enc.eval()
    x = torch.randn(1, 2, 700)
    with torch.no_grad():
        assert torch.equal(model_from_checkpoint(ckpt)(x), enc(x))
        # the loaders accept our format and ignore their default config
        assert torch.equal(load_encoder(path)(x), enc(x))
        assert isinstance(load_model(path), FXEncoder)
    with pytest.raises(MixfxError, match="expected a MixFXcloner, but the file looks like an FXencoder"):
        load_cloner(path)
    with pytest.raises(MixfxError, match="not a mixfx model checkpoint"):
        load_model_checkpoint(_fake_official(enc, tmp_path / "official.pt"))
    with pytest.raises(MixfxError, match="cannot checkpoint"):
        save_model_checkpoint(tmp_path / "x.pt", torch.nn.Linear(2, 2))


def test_metadata_label_and_old_names(tmp_path):
    enc = _randomize(FXEncoder(FXEncoderConfig.tiny()))
    ours = save_model_checkpoint(tmp_path / "ours.pt", enc, extra={"label": "run A"})
    loaded = load_model_and_metadata(ours)
    assert loaded.kind == "fxencoder" and loaded.label == "run A" and loaded.checkpoint.extra == {"label": "run A"}
    official = load_model_and_metadata(_fake_official(enc, tmp_path / "off.pt"), config=FXEncoderConfig.tiny())
    assert official.kind == "fxencoder" and official.checkpoint is None and official.label is None
    # the old names in mixfx.models.official are the same functions, not copies
    from mixfx.models import loading, official as old

    assert old.load_official_encoder is loading.load_encoder and old.load_official_cloner is loading.load_cloner
    assert old.load_model is loading.load_model and old.model_from_checkpoint is loading.model_from_checkpoint


def test_strict_load_diagnosis_counts_each_problem(tmp_path):
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Linear(2, 1))  # keys 0.weight 0.bias 1.weight 1.bias
    good = {k: torch.ones_like(v) for k, v in model.state_dict().items()}
    load_state_dict_strict(model, good, "w.pt", model_name="the toy")
    assert all(torch.equal(v, torch.ones_like(v)) for v in model.state_dict().values())
    bad = {"0.weight": torch.zeros(2, 4), "0.bias": torch.zeros(2), "extra.w": torch.zeros(1), "x.y": torch.zeros(1)}
    msg = (r"^w.pt: weights do not fit the toy: 2 missing keys \(e.g. 1.weight\); 2 unexpected keys \(e.g. extra.w\); "
           r"1 shape mismatches \(e.g. 0.weight: file \[2, 4\], model \[2, 3\]\); the file looks like junk$")
    with pytest.raises(MixfxError, match=msg):
        load_state_dict_strict(model, bad, "w.pt", model_name="the toy", looks_like="junk")
    assert all(torch.equal(v, torch.ones_like(v)) for v in model.state_dict().values())  # untouched on failure


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    auto = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    assert resolve_device(None) == auto and resolve_device("auto") == auto
    with pytest.raises(MixfxError, match="'gpu0': not a torch device"):
        resolve_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(MixfxError, match="CUDA is not available"):
            resolve_device("cuda:0")
