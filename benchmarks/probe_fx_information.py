"""Diagnostic: how much FX-parameter information do FXencoder embeddings carry? (issue 10)

For each FX mode (full chain or one effect) it draws an iid item set (one configuration per item) from a
dataset split, embeds the items with the given encoders, a random-init encoder and the hand-crafted
features, and prints the 5-fold cross-validated R² of a ridge regression from the standardised codes to
each normalised FX parameter (mean over factors, clipped at 0), for raw and L2-normalised codes, plus
the codes' effective rank (exp of the entropy of the normalised singular values). Per-factor R² is
listed for the single-effect modes.

    python benchmarks/probe_fx_information.py DATA ENC1.pt,ENC2.pt [SECONDS] [MODES] [SPLIT] [KINDS] [-v]

e.g. ``… runs/small/data_normalized runs/small/runs/encoder_ps/checkpoints/last.pt 2.0 eq,compressor,full test vocals``.
"""
import sys, time, numpy as np, torch
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import cross_val_predict, KFold
from sklearn.preprocessing import StandardScaler
from sklearn.pipeline import make_pipeline
from mixfx.data.musdb import MultitrackSegments
from mixfx.fx.chain import FXManipulator
from mixeval.evalset import EvalSetConfig, plan_segments, load_segments, sample_item_set, render_items
from mixeval.evalset_factors import item_factors
from mixeval.pipelines.disentangle_embed import baseline_representations, embed_batch, encoder_representation

torch.set_num_threads(1)
data_dir = sys.argv[1]; ckpts = sys.argv[2].split(",") if len(sys.argv) > 2 and sys.argv[2] else []
secs = float(sys.argv[3]) if len(sys.argv) > 3 else 2.0
modes = sys.argv[4].split(",") if len(sys.argv) > 4 else ["full", "eq", "compressor", "pan", "imager", "gain", "reverb"]
split = sys.argv[5] if len(sys.argv) > 5 else "test"
KS = sys.argv[6].split(",") if len(sys.argv) > 6 else ["vocals", "mixture"]
cfg = EvalSetConfig(segments=8, configs=25, seconds=secs, protocol="iid", segments_per_song=3, split=split)
data = MultitrackSegments(data_dir, split)
chain = FXManipulator()
segs = plan_segments(data, cfg, 0)
audio = load_segments(data, segs, cfg.segment_samples)
reps = [encoder_representation(p, f"enc{i}") for i, p in enumerate(ckpts)]
reps += baseline_representations(["random", "mfcc"], sample_rate=44100, encoder_config=reps[0].module.config if reps else None)
def r2cv(X, Y):
    X = StandardScaler().fit_transform(X)
    m = RidgeCV(alphas=np.logspace(-2, 4, 13))
    P = cross_val_predict(m, X, Y, cv=KFold(5, shuffle=True, random_state=0))
    ss = ((Y - Y.mean(0)) ** 2).sum(0); return 1 - ((Y - P) ** 2).sum(0) / np.maximum(ss, 1e-12)
def stats(Z):
    Zc = Z - Z.mean(0); s = np.linalg.svd(Zc, compute_uv=False); p = s**2 / (s**2).sum()
    return dict(dead=int((Z.std(0) < 1e-6).sum()), erank=float(np.exp(-(p * np.log(p + 1e-20)).sum())))
for mode in modes:
    items = sample_item_set(chain, segs, cfg, seed=0, mode=mode)
    codes = {r.label: {k: [] for k in KS} for r in reps}
    for idx, out in render_items(items, audio, chain, batch_size=25):
        for r in reps:
            for k in KS:
                codes[r.label][k].append(embed_batch(r, out[k]))
    for k in KS:
        fs = item_factors(items, k)
        Y = fs.matrix
        rng = np.random.default_rng(0)
        line = [f"{mode:10s} {k:8s} nf={Y.shape[1]:3d}"]
        res = {}
        for r in reps:
            Z = np.concatenate(codes[r.label][k]); r2 = r2cv(Z, Y); res[r.label] = r2
            st = stats(Z)
            Zn = Z / np.maximum(np.linalg.norm(Z, axis=1, keepdims=True), 1e-12)
            r2n = r2cv(Zn, Y); res[r.label + "/n"] = r2n
            stn = stats(Zn)
            line.append(f"{r.label[:10]}: R2 {np.clip(r2,0,None).mean():.3f} n {np.clip(r2n,0,None).mean():.3f} (erank {st['erank']:.1f}/{stn['erank']:.1f})")
        line.append(f"noise: {np.clip(r2cv(rng.normal(size=(len(Y), 64)), Y),0,None).mean():.3f}")
        print(" | ".join(line), flush=True)
        if k == "vocals" and mode != "full" or (k=="vocals" and "-v" in sys.argv):
            for j, n in enumerate(fs.names):
                print("     ", f"{n:28s}", " ".join(f"{res[l][j]:6.2f}" for l in res))
