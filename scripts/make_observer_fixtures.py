#!/usr/bin/python3
"""Golden fixtures for lib/quantization (observers, qparams, qconfig reprs) from the real torch 1.13.

Run with Debian's torch:  /usr/bin/python3 scripts/make_observer_fixtures.py
Writes test/fixtures/observers.json.

Inputs are not stored: every batch is described by a small generator spec (seed, size, kind, float32
parameters) that test/observers.test.ts re-creates bit-exactly. The generator uses a 32-bit LCG and only
IEEE float32 + - * / and abs/floor/compare, so numpy float32 and JS Math.fround agree exactly. Each batch
also records a checksum of its float32 bits so a generator drift is reported as such.
"""
import json
import math
import os
import sys
import time
import warnings

import numpy as np
import torch
from torch.ao.quantization import QConfig, default_qconfig, get_default_qconfig
from torch.ao.quantization.observer import (
    HistogramObserver, MinMaxObserver, MovingAverageMinMaxObserver, PerChannelMinMaxObserver,
    default_histogram_observer, default_observer, default_per_channel_weight_observer,
    default_weight_observer)
from torch.ao.quantization.utils import calculate_qmin_qmax

torch.set_num_threads(1)  # modest CPU use; also the single-thread histc accumulation order
warnings.filterwarnings("ignore")

f32 = np.float32
MASK = 0xFFFFFFFF
LCG_A, LCG_C = 1664525, 1013904223


def lcg_u(seed, count):
    """count uniforms in [0,1): u = (s >> 8) * 2**-24 with s <- (A*s + C) mod 2**32 (first draw after seed)."""
    out = np.empty(count, dtype=np.uint64)
    s = seed & MASK
    block = min(count, 1024)
    for i in range(block):
        s = (LCG_A * s + LCG_C) & MASK
        out[i] = s
    if count > block:
        # jump-ahead by `block` steps: s_{i+block} = A_k s_i + C_k (mod 2**32)
        ak, ck = 1, 0
        for _ in range(block):
            ak, ck = (LCG_A * ak) & MASK, (LCG_A * ck + LCG_C) & MASK
        ak, ck = np.uint64(ak), np.uint64(ck)
        i = block
        while i < count:
            m = min(block, count - i)
            out[i:i + m] = (out[i - block:i - block + m] * ak + ck) & np.uint64(MASK)
            i += m
    return ((out >> np.uint64(8)).astype(np.float64) * 2.0 ** -24).astype(f32)


def gen(spec):
    """Float32 data for a generator spec (see test/observers.test.ts `generate`, which mirrors this)."""
    n = int(np.prod(spec["shape"])) if spec["shape"] else 1
    kind = spec["kind"]
    scale = f32(spec.get("scale", 1.0))
    offset = f32(spec.get("offset", 0.0))
    if kind == "const":
        x = np.full(n, offset, dtype=f32)
    elif kind == "uniform":
        u = lcg_u(spec["seed"], n)
        x = (u * scale).astype(f32) + offset
    elif kind == "normal":  # Irwin-Hall(4) - 2, a bell curve with float32-exact arithmetic
        u = lcg_u(spec["seed"], 4 * n).reshape(n, 4)
        s = ((u[:, 0] + u[:, 1]) + u[:, 2]) + u[:, 3]
        x = ((s - f32(2)) * scale) + offset
    elif kind == "heavy":  # (u1 - 1/2) / (u2^2 + 1e-3): Cauchy-like tails
        u = lcg_u(spec["seed"], 2 * n).reshape(n, 2)
        a = u[:, 0] - f32(0.5)
        b = (u[:, 1] * u[:, 1]) + f32(0.001)
        x = ((a / b) * scale) + offset
    elif kind == "grid":  # exact multiples of `scale` (bin-edge adversaries), k in [0, 2048]
        u = lcg_u(spec["seed"], n)
        k = np.floor(u * f32(2049)).astype(f32)
        x = (k * scale) + offset
    else:
        raise ValueError(kind)
    x = x.astype(f32)
    post = spec.get("post")
    if post == "relu":
        x = np.where(x > 0, x, f32(0)).astype(f32)
    elif post == "relu6":
        x = np.where(x > 0, x, f32(0)).astype(f32)
        x = np.where(x < f32(6), x, f32(6)).astype(f32)
    elif post == "negabs":
        x = (-np.abs(x)).astype(f32)
    pin = spec.get("pin")
    if pin is not None:  # clamp into [lo, hi] and force both ends to occur
        lo, hi = f32(pin[0]), f32(pin[1])
        x = np.where(x < lo, lo, x).astype(f32)
        x = np.where(x > hi, hi, x).astype(f32)
        if n >= 2:
            x[0], x[1] = lo, hi
    assert x.dtype == f32
    return x


def hash32(a):
    """sum_i ((bits_i * (i % 65521 + 1)) mod 2**32) mod 2**32 over float32 bit patterns."""
    a = np.ascontiguousarray(a, dtype=f32)
    bits = a.view(np.uint32).astype(np.uint64)
    w = (np.arange(a.size, dtype=np.uint64) % np.uint64(65521)) + np.uint64(1)
    return int(((bits * w) & np.uint64(MASK)).sum() & np.uint64(MASK))


def fl(v):
    """A float32 value as a JSON number (the float64 repr round-trips exactly); inf/nan as strings."""
    v = float(v)
    if math.isfinite(v):
        return v
    return str(v)


def listf(t):
    return [fl(v) for v in t.reshape(-1).tolist()]


DT = {"quint8": torch.quint8, "qint8": torch.qint8, "qint32": torch.qint32}
QS = {"per_tensor_affine": torch.per_tensor_affine, "per_tensor_symmetric": torch.per_tensor_symmetric,
      "per_channel_affine": torch.per_channel_affine, "per_channel_symmetric": torch.per_channel_symmetric,
      "per_channel_affine_float_qparams": torch.per_channel_affine_float_qparams}
CLS = {"MinMaxObserver": MinMaxObserver, "MovingAverageMinMaxObserver": MovingAverageMinMaxObserver,
       "PerChannelMinMaxObserver": PerChannelMinMaxObserver, "HistogramObserver": HistogramObserver}
PYNAME = {"quantMin": "quant_min", "quantMax": "quant_max", "reduceRange": "reduce_range", "dtype": "dtype",
          "qscheme": "qscheme", "eps": "eps", "averagingConstant": "averaging_constant", "chAxis": "ch_axis",
          "bins": "bins", "upsampleRate": "upsample_rate"}


def make_observer(cls_name, args):
    kw = {}
    for k, v in args.items():
        if k == "dtype":
            v = DT[v]
        elif k == "qscheme":
            v = QS[v]
        kw[PYNAME[k]] = v
    return CLS[cls_name](**kw)


def run_case(name, cls_name, args, batches):
    t0 = time.time()
    obs = make_observer(cls_name, args)
    case = {"name": name, "observer": cls_name, "args": args, "batches": [], "reprBefore": repr(obs)}
    for spec in batches:
        x = gen(spec)
        spec = dict(spec)
        spec["hash"] = hash32(x)
        obs(torch.from_numpy(x).reshape(spec["shape"]))
        if cls_name == "HistogramObserver":
            spec["after"] = {"min": fl(obs.min_val), "max": fl(obs.max_val), "histHash": hash32(obs.histogram.numpy())}
        case["batches"].append(spec)
    if cls_name == "HistogramObserver" and not (obs.min_val == float("inf") and obs.max_val == float("-inf")):
        new_min, new_max = obs._non_linear_param_search()
        scale, zp = obs._calculate_qparams(new_min, new_max)
        case["searchMin"], case["searchMax"] = fl(new_min), fl(new_max)
        case["histSum"] = float(obs.histogram.double().sum())
    else:
        scale, zp = obs.calculate_qparams()
    case["scale"] = listf(scale)
    case["zeroPoint"] = [fl(v) if isinstance(v, float) else int(v) for v in zp.reshape(-1).tolist()]
    if obs.min_val.dim() == 0:
        case["minVal"], case["maxVal"] = fl(obs.min_val), fl(obs.max_val)
    else:
        case["minVal"], case["maxVal"] = listf(obs.min_val), listf(obs.max_val)
    case["repr"] = repr(obs)
    dt = time.time() - t0
    print(f"{name:48s} {dt:6.2f}s scale={case['scale'][:2]} zp={case['zeroPoint'][:2]}", file=sys.stderr)
    return case


def B(kind, seed, shape, **kw):
    d = {"kind": kind, "seed": seed, "shape": list(shape)}
    for k, v in kw.items():
        d[k] = float(f32(v)) if k in ("scale", "offset") else ([float(f32(p)) for p in v] if k == "pin" else v)
    return d


def main():
    out_path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "fixtures", "observers.json")
    cases = []
    C = lambda *a: cases.append(run_case(*a))

    # ---------------- MinMaxObserver ----------------
    three = [B("normal", 11, [4, 8, 16], scale=1.7, offset=0.3), B("normal", 12, [1000], scale=2.2),
             B("uniform", 13, [2, 3, 7], scale=3.0, offset=-1.0)]
    C("minmax/default", "MinMaxObserver", {}, three)
    C("minmax/reduce_range", "MinMaxObserver", {"reduceRange": True}, three)
    C("minmax/symmetric_qint8", "MinMaxObserver", {"dtype": "qint8", "qscheme": "per_tensor_symmetric"}, three)
    C("minmax/quint8_0_127", "MinMaxObserver", {"quantMin": 0, "quantMax": 127}, three)
    C("minmax/quint8_0_127_reduce", "MinMaxObserver", {"quantMin": 0, "quantMax": 127, "reduceRange": True}, three)
    C("minmax/symmetric_quint8", "MinMaxObserver", {"qscheme": "per_tensor_symmetric"}, three)
    C("minmax/symmetric_quint8_custom", "MinMaxObserver",
      {"qscheme": "per_tensor_symmetric", "quantMin": 0, "quantMax": 127}, three)
    C("minmax/qint8_affine", "MinMaxObserver", {"dtype": "qint8"}, three)
    C("minmax/qint8_affine_reduce", "MinMaxObserver", {"dtype": "qint8", "reduceRange": True}, three)
    C("minmax/qint32_symmetric", "MinMaxObserver", {"dtype": "qint32", "qscheme": "per_tensor_symmetric"}, three)
    C("minmax/qint32_affine", "MinMaxObserver", {"dtype": "qint32"}, three)
    C("minmax/range_neg127_127", "MinMaxObserver",
      {"dtype": "qint8", "qscheme": "per_tensor_symmetric", "quantMin": -127, "quantMax": 127, "eps": 2 ** -12},
      [B("normal", 21, [64, 9], scale=0.05)])
    C("minmax/relu_only", "MinMaxObserver", {}, [B("normal", 22, [5000], scale=3.0, post="relu")])
    C("minmax/negative_only", "MinMaxObserver", {}, [B("normal", 23, [5000], scale=3.0, post="negabs")])
    C("minmax/all_equal", "MinMaxObserver", {}, [B("const", 0, [10], offset=0.75)])
    C("minmax/all_zero", "MinMaxObserver", {}, [B("const", 0, [10], offset=0.0)])
    C("minmax/tiny_below_eps", "MinMaxObserver", {}, [B("uniform", 24, [100], scale=1e-6, offset=-3e-7)])
    C("minmax/unobserved", "MinMaxObserver", {}, [])
    C("minmax/empty_then_data", "MinMaxObserver", {}, [B("const", 0, [0]), B("uniform", 25, [33], scale=2.0)])
    C("minmax/grid", "MinMaxObserver", {}, [B("grid", 26, [4096], scale=1 / 256, offset=-2.0)])
    for i, (sc, off) in enumerate([(0.01, 0.0), (7.0, -3.0), (123.0, 40.0), (0.3, -0.29), (1e-3, 1e-3)]):
        C(f"minmax/sweep{i}", "MinMaxObserver", {}, [B("uniform", 30 + i, [257], scale=sc, offset=off)])
        C(f"minmax/sweep{i}_qint8sym", "MinMaxObserver", {"dtype": "qint8", "qscheme": "per_tensor_symmetric"},
          [B("uniform", 30 + i, [257], scale=sc, offset=off)])

    # ---------------- MovingAverageMinMaxObserver ----------------
    five = [B("normal", 41 + i, [3000], scale=1.0 + 0.6 * i, offset=0.1 * i) for i in range(5)]
    C("movavg/default", "MovingAverageMinMaxObserver", {}, five)
    C("movavg/symmetric_qint8", "MovingAverageMinMaxObserver", {"dtype": "qint8", "qscheme": "per_tensor_symmetric"}, five)
    C("movavg/reduce_range", "MovingAverageMinMaxObserver", {"reduceRange": True}, five)
    C("movavg/const_0.1", "MovingAverageMinMaxObserver", {"averagingConstant": 0.1, "quantMin": 0, "quantMax": 127}, five)

    # ---------------- PerChannelMinMaxObserver ----------------
    w = [B("normal", 51, [16, 3, 3, 3], scale=0.2), B("normal", 52, [16, 3, 3, 3], scale=0.25, offset=0.01)]
    C("perchannel/axis0_symmetric", "PerChannelMinMaxObserver",
      {"dtype": "qint8", "qscheme": "per_channel_symmetric"}, w)
    C("perchannel/axis0_affine", "PerChannelMinMaxObserver", {}, w)
    C("perchannel/axis1_symmetric", "PerChannelMinMaxObserver",
      {"chAxis": 1, "dtype": "qint8", "qscheme": "per_channel_symmetric"}, w)
    a = [B("normal", 53, [2, 8, 5, 5], scale=2.0, offset=0.5), B("normal", 54, [2, 8, 5, 5], scale=1.0, post="relu")]
    C("perchannel/axis1_affine", "PerChannelMinMaxObserver", {"chAxis": 1}, a)
    C("perchannel/axis1_affine_reduce", "PerChannelMinMaxObserver", {"chAxis": 1, "reduceRange": True}, a)
    C("perchannel/axis_neg1_affine", "PerChannelMinMaxObserver", {"chAxis": -1}, a)
    C("perchannel/axis2_qint8_affine", "PerChannelMinMaxObserver", {"chAxis": 2, "dtype": "qint8"}, a)
    C("perchannel/float_qparams", "PerChannelMinMaxObserver",
      {"qscheme": "per_channel_affine_float_qparams", "quantMin": 0, "quantMax": 255}, [B("normal", 55, [12, 20], scale=0.3)])
    C("perchannel/linear_32", "PerChannelMinMaxObserver", {"dtype": "qint8", "qscheme": "per_channel_symmetric"},
      [B("normal", 56, [32, 40], scale=0.05)])
    C("perchannel/ints", "PerChannelMinMaxObserver", {"dtype": "qint8", "qscheme": "per_channel_symmetric"},
      [B("grid", 57, [6, 10], scale=1.0, offset=-1000.0)])
    C("perchannel/sci", "PerChannelMinMaxObserver", {"dtype": "qint8", "qscheme": "per_channel_symmetric"},
      [B("heavy", 58, [5, 40], scale=1e-3)])
    C("perchannel/const_channels", "PerChannelMinMaxObserver", {}, [B("const", 0, [4, 3], offset=0.5)])
    C("perchannel/1280", "PerChannelMinMaxObserver", {"dtype": "qint8", "qscheme": "per_channel_symmetric"},
      [B("normal", 59, [1280, 4], scale=0.1)])
    C("perchannel/unobserved", "PerChannelMinMaxObserver", {}, [])

    # ---------------- HistogramObserver ----------------
    for rr in (False, True):
        sfx = "_rr" if rr else ""
        base = {"reduceRange": True} if rr else {}
        C("hist/normal_range_gt1" + sfx, "HistogramObserver", base, [B("normal", 101, [20000], scale=2.5, offset=0.2)])
        C("hist/uniform_range_lt1" + sfx, "HistogramObserver", base, [B("uniform", 102, [20000], scale=0.85, offset=-0.4)])
        C("hist/negative_only" + sfx, "HistogramObserver", base, [B("normal", 103, [30000], scale=2.0, post="negabs")])
        C("hist/relu" + sfx, "HistogramObserver", base, [B("normal", 104, [50000], scale=3.0, post="relu")])
        C("hist/heavy" + sfx, "HistogramObserver", base, [B("heavy", 105, [100000], scale=0.01)])
        C("hist/grow" + sfx, "HistogramObserver", base,
          [B("normal", 110 + i, [20000], scale=s, offset=o) for i, (s, o) in
           enumerate([(1.0, 0.0), (1.6, 0.1), (2.9, -0.2), (4.2, 0.3)])])
        C("hist/shrink" + sfx, "HistogramObserver", base,
          [B("normal", 120 + i, [20000], scale=s) for i, s in enumerate([4.0, 2.5, 1.0, 0.4])])
        C("hist/equal_ranges" + sfx, "HistogramObserver", base,
          [B("normal", 130 + i, [20000], scale=2.0, pin=[-3.25, 4.5]) for i in range(4)])
        C("hist/mixed_lt1" + sfx, "HistogramObserver", base,
          [B("uniform", 140, [20000], scale=0.5, offset=0.1), B("uniform", 141, [20000], scale=0.9, offset=-0.3),
           B("uniform", 142, [20000], scale=0.2, offset=0.2), B("normal", 143, [20000], scale=0.3)])
        C("hist/relu6_mobilenet" + sfx, "HistogramObserver", base,
          [B("normal", 150 + i, [100000], scale=2.0 + i, offset=0.5, post="relu6") for i in range(3)])
    C("hist/default_0_127", "HistogramObserver", {"quantMin": 0, "quantMax": 127},
      [B("normal", 160 + i, [20000], scale=1.0 + i) for i in range(3)])
    C("hist/symmetric_qint8", "HistogramObserver", {"dtype": "qint8", "qscheme": "per_tensor_symmetric"},
      [B("normal", 170, [20000], scale=1.5, offset=0.4), B("heavy", 171, [20000], scale=0.02)])
    C("hist/negative_multi", "HistogramObserver", {},
      [B("normal", 180 + i, [20000], scale=1.0 + 0.7 * i, offset=-0.5, post="negabs") for i in range(3)])
    C("hist/grid_edges", "HistogramObserver", {}, [B("grid", 190, [30000], scale=6 / 2048, offset=-2.0),
                                                  B("grid", 191, [30000], scale=7 / 2048, offset=-3.0)])
    C("hist/heavy_multi", "HistogramObserver", {"reduceRange": True},
      [B("heavy", 200 + i, [50000], scale=0.005 * (i + 1)) for i in range(3)])
    C("hist/all_equal_then_data", "HistogramObserver", {},
      [B("const", 0, [1000], offset=1.5), B("const", 0, [10], offset=1.5), B("normal", 210, [5000], scale=1.0)])
    C("hist/all_equal", "HistogramObserver", {}, [B("const", 0, [1000], offset=0.625)])
    C("hist/int_range_fallback", "HistogramObserver", {},
      [B("uniform", 220, [20000], scale=0.7, offset=2.1), B("uniform", 221, [20000], scale=0.8, offset=2.05)])
    C("hist/small", "HistogramObserver", {}, [B("normal", 230, [7], scale=1.0), B("normal", 231, [9], scale=2.0)])
    C("hist/bins256_up16", "HistogramObserver", {"bins": 256, "upsampleRate": 16},
      [B("normal", 240 + i, [10000], scale=1.0 + i) for i in range(3)])
    C("hist/empty_batch", "HistogramObserver", {}, [B("const", 0, [0]), B("normal", 250, [3000], scale=1.0)])
    C("hist/unobserved", "HistogramObserver", {}, [])

    # ---------------- randomized sweeps (configs stored in the JSON, data from the LCG) ----------------
    rnd = np.random.default_rng(20240501)
    kinds = ["normal", "uniform", "heavy", "normal_relu", "normal_negabs", "grid", "relu6"]
    for i in range(48):
        kind = kinds[i % len(kinds)]
        args = {}
        if rnd.random() < 0.5:
            args["reduceRange"] = True
        r = rnd.random()
        if r < 0.15:
            args.update({"dtype": "qint8", "qscheme": "per_tensor_symmetric"})
        elif r < 0.3:
            args.update({"quantMin": 0, "quantMax": 127})
        nb = int(rnd.integers(1, 6))
        batches = []
        base_sc = float(10 ** rnd.uniform(-1.5, 1.3))
        for j in range(nb):
            n = int(rnd.integers(1000, 60000))
            # batch ranges within ~10x of each other: torch materializes bins * downsample_rate floats
            sc = base_sc * float(10 ** rnd.uniform(-0.5, 0.5))
            off = float(rnd.uniform(-1, 1) * sc * 0.5)
            seed = int(rnd.integers(1, 2 ** 31))
            if kind == "normal_relu":
                batches.append(B("normal", seed, [n], scale=sc, offset=off, post="relu"))
            elif kind == "normal_negabs":
                batches.append(B("normal", seed, [n], scale=sc, offset=off, post="negabs"))
            elif kind == "relu6":
                batches.append(B("normal", seed, [n], scale=sc, offset=off, post="relu6"))
            elif kind == "grid":
                batches.append(B("grid", seed, [n], scale=sc / 512, offset=off))
            elif kind == "heavy":
                batches.append(B("heavy", seed, [n], scale=sc * 0.01, offset=off * 0.1))
            else:
                batches.append(B(kind, seed, [n], scale=sc, offset=off))
        C(f"sweep/hist{i:02d}_{kind}", "HistogramObserver", args, batches)
    C("hist/grow_10x", "HistogramObserver", {},
      [B("normal", 300, [20000], scale=0.5), B("normal", 301, [20000], scale=5.0), B("normal", 302, [20000], scale=9.0)])
    C("hist/qint32", "HistogramObserver", {"dtype": "qint32"}, [B("normal", 310, [5000], scale=3.0)])
    for i in range(12):
        ch = int(rnd.integers(1, 40))
        shape = [int(rnd.integers(1, 3)), ch, int(rnd.integers(1, 6)), int(rnd.integers(1, 6))]
        axis = int(rnd.integers(0, 4))
        args = {"chAxis": axis}
        if i % 2:
            args.update({"dtype": "qint8", "qscheme": "per_channel_symmetric"})
        batches = [B("normal", int(rnd.integers(1, 2 ** 31)), shape, scale=float(10 ** rnd.uniform(-2, 1)),
                     offset=float(rnd.uniform(-0.5, 0.5))) for _ in range(int(rnd.integers(1, 4)))]
        C(f"sweep/perchannel{i:02d}", "PerChannelMinMaxObserver", args, batches)
    for i in range(12):
        cls = ["MinMaxObserver", "MovingAverageMinMaxObserver"][i % 2]
        args = {}
        if rnd.random() < 0.4:
            args.update({"dtype": "qint8", "qscheme": "per_tensor_symmetric"})
        elif rnd.random() < 0.5:
            args["reduceRange"] = True
        batches = [B(["normal", "heavy", "uniform"][j % 3], int(rnd.integers(1, 2 ** 31)), [int(rnd.integers(1, 5000))],
                     scale=float(10 ** rnd.uniform(-3, 2)), offset=float(rnd.uniform(-1, 1))) for j in range(4)]
        C(f"sweep/{cls}{i:02d}", cls, args, batches)

    # ---------------- kernels: torch.sum (cascade) and torch.histc ----------------
    sums = []
    for i, n in enumerate([2048, 2047, 2049, 256, 5, 100, 4097, 16, 31]):
        spec = B("heavy", 400 + i, [n], scale=1.0)
        sums.append({"spec": spec, "sum": fl(torch.from_numpy(gen(spec)).sum())})
    spec = B("const", 0, [2048], offset=1.0)
    x = gen(spec)
    x[::3] = f32(16777216)
    sums.append({"spec": spec, "every3": 16777216.0, "sum": fl(torch.from_numpy(x).sum())})
    histc = []
    for i, (bins, lo, hi) in enumerate([(2048, -2, 4), (2048, 0, 0), (256, -1, 1), (15, -2.3, 3.7), (31, -7, 9),
                                        (2047, -3, 5), (100, 0.1, 0.7), (2048, -1.5, 1.5)]):
        spec = B("grid", 500 + i, [30000], scale=(hi - lo) / 2048 if hi > lo else 1 / 1024, offset=lo)
        x = gen(spec)
        h = torch.histc(torch.from_numpy(x), bins, min=lo, max=hi).numpy()
        histc.append({"spec": spec, "bins": bins, "min": lo, "max": hi, "xmin": fl(x.min()), "xmax": fl(x.max()),
                      "histHash": hash32(h), "count": float(h.sum())})

    # ---------------- tables / reprs ----------------
    qtable = []
    for dt in ("quint8", "qint8", "qint32"):
        for rr in (False, True):
            for qmin, qmax in ((None, None), (0, 127), (0, 255), (-128, 127), (-127, 127), (-64, 63), (0, 15)):
                if dt == "qint32" and qmin is not None and qmin < -128:
                    continue
                cust = qmin is not None and qmax is not None
                try:
                    r = list(calculate_qmin_qmax(qmin, qmax, cust, DT[dt], rr))
                except AssertionError:
                    r = None
                qtable.append({"dtype": dt, "reduceRange": rr, "quantMin": qmin, "quantMax": qmax, "result": r})
    rvals = [0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 0.49999997, 2.5000002, -3.5, 4.5, 1e7 + 0.5, 8388607.5, 0.0, -0.0,
             123.456, -7.75]
    rounds = [[fl(f32(v)), fl(torch.round(torch.tensor([v], dtype=torch.float32)).item())] for v in rvals]
    reprs = {
        "default_qconfig": repr(default_qconfig),
        "default_observer": repr(default_observer),
        "default_weight_observer": repr(default_weight_observer),
        "default_histogram_observer": repr(default_histogram_observer),
        "default_per_channel_weight_observer": repr(default_per_channel_weight_observer),
        "nested": repr(MinMaxObserver.with_args(quant_min=0, quant_max=127).with_args(reduce_range=True)),
        "eps": repr(MinMaxObserver.with_args(dtype=torch.qint8, qscheme=torch.per_tensor_symmetric,
                                             quant_min=-127, quant_max=127, eps=2 ** -12)),
        "movavg": repr(MovingAverageMinMaxObserver.with_args(averaging_constant=0.1)),
        "hist_bins": repr(HistogramObserver.with_args(bins=512, upsample_rate=16)),
        "perchannel_axis1": repr(PerChannelMinMaxObserver.with_args(ch_axis=1, dtype=torch.qint8)),
    }
    for b in ("fbgemm", "x86", "qnnpack", "onednn"):
        reprs["get_default_qconfig:" + b] = repr(get_default_qconfig(b))
    data = {"torch": torch.__version__, "lcg": {"a": LCG_A, "c": LCG_C}, "cases": cases, "qminmax": qtable,
            "round": rounds, "reprs": reprs, "sums": sums, "histc": histc}
    os.makedirs(os.path.dirname(out_path), exist_ok=True)
    with open(out_path, "w") as f:
        json.dump(data, f, indent=None, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {out_path} ({os.path.getsize(out_path)} bytes, {len(cases)} cases)", file=sys.stderr)


if __name__ == "__main__":
    main()
