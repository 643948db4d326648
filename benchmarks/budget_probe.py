"""A fast probe of ``closest_adversarial`` at chosen budgets on chosen rows of
``bench_budget.py`` (the same nets, points, counter and peers), for working on the attack.

Each row is ``arch:norm`` (``fc``, ``lenet``, ``conv4``, ``resnet`` at ``--size``, or ``small``,
the 10-16-16-1 nets with an exact distance). Per row and budget it prints the median distance /
reference of randadv and of the chosen peers, and on how many points randadv is closer than
the best peer. The reference is the exact distance on the small nets, else the least distance
randadv and the chosen peers find at ``--ref-budget`` (default 1000) and at the probed budgets;
references and the peers' distances are cached under ``--cache`` (they do not depend on
randadv's code), so a second probe of one row at budget 20 costs a few CPU seconds.

``--ours key=value,...`` passes keyword arguments to ``closest_adversarial`` (ints, floats,
``methods=fab+fmn``), e.g. to compare a setting against the default on the same points.

Run: ``python benchmarks/budget_probe.py --rows resnet:linf,small:linf --budgets 20
--cache /tmp/probe`` (one row at budget 20: about a minute with a warm cache).
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np
import torch
from bench_budget import OURS, exact_references, peers, run_one, small_nets

from randadv.nets.zoo import build_architecture

DEFAULT_PEERS = "foolbox FMN,adv-lib FMN,adv-lib FAB"


def parse_ours(text: str) -> dict:
    """``key=value,...`` -> keyword arguments (ints, floats, ``+``-joined method lists)."""
    out: dict = {}
    for item in filter(None, text.split(",")):
        key, value = item.split("=", 1)
        if key == "methods":
            out[key] = tuple(value.split("+"))
            continue
        for cast in (int, float):
            try:
                out[key] = cast(value)
                break
            except ValueError:
                continue
        else:
            out[key] = {"True": True, "False": False}.get(value, value)
    return out


def row_nets(arch: str, size: int, n_nets: int, points: int):
    if arch == "small":
        return "small 10-16-16-1 (exact)", small_nets(n_nets, points)
    out = []
    for k in range(n_nets):
        net = build_architecture(arch, size, seed=k)
        out.append((net, net.sample_inputs(points, "bench", k)))
    return f"{arch} n={3 * size * size}", out


def distances(name, run, nets_points, norm, budget, ours_kw=None):
    d, u, t = [], [], 0.0
    for net, x in nets_points:
        di, ui, ti = run_one(name, run, net, x, norm, budget,
                             ours_kw if name == OURS else None)
        d.append(di)
        u.append(ui)
        t += ti
    return np.concatenate(d), np.concatenate(u), t


def cached(cache: str | None, key: str, compute):
    if cache is None:
        return compute()
    path = os.path.join(cache, key.replace(" ", "_").replace("/", "_") + ".npy")
    if os.path.exists(path):
        return np.load(path)
    value = compute()
    os.makedirs(cache, exist_ok=True)
    np.save(path, value)
    return value


def probe_row(item: str, args, budgets: list, ours_kw: dict) -> dict:
    """Print one row's probe (see the module docstring); returns its medians per budget."""
    out = {}
    arch, norm = item.split(":")
    label, nets_points = row_nets(arch, args.size, args.nets, args.points)
    runs = {k: v for k, v in peers(norm).items() if k in args.peers.split(",")}
    tag = f"{arch}{args.size}-{args.nets}x{args.points}-{norm}"
    peer_d = {(n, b): cached(args.cache, f"{tag}-{n}-{b}",
                             lambda n=n, b=b: distances(n, runs[n], nets_points, norm, b)[0])
              for n in runs for b in budgets}
    if arch == "small":
        ref = cached(args.cache, f"{tag}-exact",
                     lambda: exact_references(nets_points, norm, 60.0))
    else:
        def reference():
            ds = [distances(OURS, None, nets_points, norm, args.ref_budget)[0]]
            ds += [distances(n, runs[n], nets_points, norm, args.ref_budget)[0] for n in runs]
            return np.min(np.stack(ds), 0)
        ref = cached(args.cache, f"{tag}-ref{args.ref_budget}-{'+'.join(sorted(runs))}",
                     reference)
    for b in budgets:
        d, used, t = distances(OURS, None, nets_points, norm, b, ours_kw)
        ref_b = np.minimum(ref, np.min(np.stack([d] + [peer_d[(n, b)] for n in runs]), 0)) \
            if arch != "small" else ref
        q = d / ref_b
        line = {OURS: float(np.median(q))}
        best_peer = np.full_like(d, np.inf)
        for n in runs:
            line[n] = float(np.median(peer_d[(n, b)] / ref_b))
            best_peer = np.minimum(best_peer, peer_d[(n, b)])
        wins = int(np.sum(d < best_peer * (1 - 1e-4)))
        losses = int(np.sum(d > best_peer * (1 + 1e-4)))
        peer_best_median = min((v for k, v in line.items() if k != OURS), default=np.inf)
        verdict = "ok" if line[OURS] <= peer_best_median * 1.001 else "BEHIND"
        print(f"{label} {norm} @ {b}: randadv {line[OURS]:.4f} (success "
              f"{np.isfinite(d).mean():.0%}, max used {int(used.max())}, {t:.1f} CPU s); "
              + ", ".join(f"{n} {v:.4f}" for n, v in line.items() if n != OURS)
              + f"; closer than the best peer on {wins}, farther on {losses} points: "
              f"{verdict}", flush=True)
        if args.per_point:
            print("   randadv / ref:   " + " ".join(f"{v:.4f}" for v in q))
            print("   best peer / ref: " + " ".join(f"{v:.4f}" for v in best_peer / ref_b))
        out[f"{label} {norm} @ {b}"] = line
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", default="resnet:linf,resnet:l1,small:linf,small:l2")
    ap.add_argument("--size", type=int, default=12)
    ap.add_argument("--nets", type=int, default=1)
    ap.add_argument("--points", type=int, default=10)
    ap.add_argument("--budgets", default="20")
    ap.add_argument("--ref-budget", type=int, default=1000)
    ap.add_argument("--peers", default=DEFAULT_PEERS)
    ap.add_argument("--ours", default="", help="key=value,... for closest_adversarial")
    ap.add_argument("--cache", default=None, help="folder for references and peers' distances")
    ap.add_argument("--per-point", action="store_true", help="print every point's ratios")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    budgets = [int(b) for b in args.budgets.split(",")]
    ours_kw = parse_ours(args.ours)
    out = {}
    for item in args.rows.split(","):
        out.update(probe_row(item, args, budgets, ours_kw))
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=1)


if __name__ == "__main__":
    main()
