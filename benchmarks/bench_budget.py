"""Benchmark: minimum-norm attacks at equal budgets of model propagations per point
(AttackBench, Cina et al. 2024): randadv's closest_adversarial against foolbox 3.3.4, adv-lib
0.2.8 and torchattacks 3.5.1 on the zoo's random networks and on small ReLU nets whose exact
distance is known.

Protocol:

* every attack's model is wrapped in a :class:`randadv.attacks.budget.PropagationCounter` for
  the batch: each forward and each backward of a point counts 1, a point whose budget is spent
  gets no more (its output is frozen at f(x), zero gradient), queries are clamped to [0, 1];
* peers are scored by the closest adversarial point seen at any query (verified afterwards by
  randadv.attacks.verify on the unwrapped model, outside the budget: AttackBench's rule for
  attacks that return their last iterate); their iteration counts are set so that they would
  spend the budget (budget / 2 steps for one forward + backward per step, budget / 3 where a
  step takes a Jacobian of the two logits) and the counter cuts them off there;
* randadv is scored by its own result (``budget=`` given: it verifies inside the budget), and
  the counter around it checks ``propagations used <= budget`` for every point;
* reference per point: the exact distance (:func:`randadv.exact.min_distance`, MILP, solved to
  optimality) on the small nets, else the least distance any attack found at any budget,
  ``--ref-budget`` included (default 2000; ``--quick`` uses its largest budget, 1000);
* per attack and budget: median and 90th percentile of distance / reference (a failure is
  inf), success rate, optimality ``mean_i min(r_i, E) / mean_i min(d_i, E)`` with E the
  largest reference distance of the row (the ratio of the areas under the reference's and the
  attack's robust-accuracy curves up to E, in the spirit of AttackBench's optimality; 1 is
  the reference), CPU seconds (process time, one thread).

The binary model f is given to the libraries as two logits (0, f) (class 1 iff f > 0).
adv-lib 0.2.8 imports ``torchvision.models`` (for its LPIPS distance) and ``visdom`` (a
logger) when its package is imported, although the attacks used here need neither, and the
torchvision wheel of the index does not run beside the CPU torch: :func:`import_adv_lib`
inserts empty stub modules for them into ``sys.modules`` before the import (only if they are
not installed), which is the whole of the shim.

Peers: foolbox FMN (l1, l2, linf; its default start blends x with uniform noise), DDN (l2),
EAD (l1); adv-lib FMN, DDN (l2, ``levels=None``: no quantisation), APGD made minimal by
bisection on its radius (l2, linf; 6 bisection rounds, cross-entropy loss: the DLR loss needs
three classes), FAB, PDPGD (l1);
torchattacks FAB (l2, linf; ``eps=inf``; its l1 raises in 3.5.1) and DeepFool (l2). adv-lib
ALMA raises on two-class models ("selected index k out of range") and is left out.

Run: ``python benchmarks/bench_budget.py --quick`` (fc and resnet at n = 432 and the small
exact nets, 10 points each, budgets 10, 20, 100, 1000) or without ``--quick`` (fc, lenet,
conv4, resnet at s = 12 and 32, budgets 10 ... 1000, reference at 2000; hours on 2 cores).
Writes a markdown table to stdout, ``--json`` the raw numbers and ``--figure`` the figure.
Needs ``pip install -e .[bench]`` (foolbox; adv-lib and torchattacks with ``--no-deps``).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import types

import numpy as np
import torch
from torch import nn

from randadv.attacks.budget import PropagationCounter
from randadv.attacks.closest import closest_adversarial
from randadv.nets.conv import TwoLogitModel
from randadv.nets.zoo import build_architecture

OURS = "randadv closest"
DEFAULT = "default"          # randadv with budget=None (its documented default)
NORM_P = {"l1": 1, "l2": 2, "linf": float("inf")}


def import_adv_lib():
    """``adv_lib.attacks`` with stub ``torchvision``, ``torchvision.models`` and ``visdom``
    modules where those are not installed (adv-lib imports them at package import; the attacks
    used here call neither)."""
    import importlib.util

    for top, names in (("torchvision", ("torchvision", "torchvision.models")),
                       ("visdom", ("visdom",))):
        if top in sys.modules or importlib.util.find_spec(top) is not None:
            continue
        for name in names:
            mod = types.ModuleType(name)
            mod.__doc__ = "stub inserted by benchmarks/bench_budget.py (not used by the attacks)"
            sys.modules[name] = mod
        if top == "torchvision":
            sys.modules["torchvision"].models = sys.modules["torchvision.models"]
    import adv_lib.attacks as attacks

    return attacks


def peers(norm: str) -> dict:
    """name -> run(model2, x, labels, budget, counter): each runs the peer on the two-logit
    model (whose scalar part is the counter) for about ``budget`` propagations."""
    import foolbox as fb
    import torchattacks as ta

    al = import_adv_lib()
    p = NORM_P[norm]

    def fbox(make):
        def run(m2, x, y, b):
            fmodel = fb.PyTorchModel(m2, bounds=(0, 1))
            make(b)(fmodel, x, y, epsilons=None)
        return run

    out = {}
    half = lambda b: max(1, b // 2)          # noqa: E731  one forward + backward per step
    third = lambda b: max(1, b // 3)         # noqa: E731  a Jacobian of two logits per step
    if norm == "l2":
        out["foolbox FMN"] = fbox(lambda b: fb.attacks.L2FMNAttack(steps=half(b)))
        out["foolbox DDN"] = fbox(lambda b: fb.attacks.DDNAttack(steps=half(b)))
    elif norm == "linf":
        out["foolbox FMN"] = fbox(lambda b: fb.attacks.LInfFMNAttack(steps=half(b)))
    else:
        out["foolbox FMN"] = fbox(lambda b: fb.attacks.L1FMNAttack(steps=half(b)))
        out["foolbox EAD"] = fbox(lambda b: fb.attacks.EADAttack(
            binary_search_steps=5, steps=max(1, b // 10)))
    out["adv-lib FMN"] = lambda m2, x, y, b: al.fmn(m2, x, y, norm=p, steps=half(b))
    if norm == "l2":
        out["adv-lib DDN"] = lambda m2, x, y, b: al.ddn(m2, x, y, steps=half(b), levels=None)
    # adv-lib ALMA: raises "selected index k out of range" on every call with two classes
    # (measured at budgets 20 and 100): left out
    if norm in ("l2", "linf"):
        out["adv-lib APGD (bisection)"] = lambda m2, x, y, b: apgd_bisection(al, m2, x, y, b, p)
    out["adv-lib FAB"] = lambda m2, x, y, b: al.fab(m2, x, y, norm=p, n_iter=third(b))
    if norm == "l1":
        out["adv-lib PDPGD"] = lambda m2, x, y, b: al.pdpgd(m2, x, y, norm=1,
                                                            num_steps=half(b))
    if norm in ("l2", "linf"):
        tn = "L2" if norm == "l2" else "Linf"
        out["torchattacks FAB"] = lambda m2, x, y, b: ta.FAB(
            m2, norm=tn, eps=float("inf"), steps=third(b), n_classes=2)(x, y)
    if norm == "l2":
        out["torchattacks DeepFool"] = lambda m2, x, y, b: ta.DeepFool(m2, steps=third(b))(x, y)
    return out


def apgd_bisection(al, m2, x, y, budget, p, rounds: int = 6):
    """APGD made minimal by bisection on its radius (per point), as AttackBench does: each
    round runs APGD at the middle radius for budget / (2 rounds) steps; a point flipped at a
    radius moves the upper end there, else the lower end. The first upper end is the box's
    diameter in the norm (any adversarial point of [0, 1]^n lies within it)."""
    n = x[0].numel()
    lo = torch.zeros(x.shape[0])
    hi = torch.full((x.shape[0],), float(n if p == 1 else (math.sqrt(n) if p == 2 else 1.0)))
    steps = max(1, budget // (2 * rounds))
    for _ in range(rounds):
        eps = 0.5 * (lo + hi)
        adv = al.apgd(m2, x, y, eps=eps, norm=p, n_iter=steps, loss_function="ce")
        with torch.no_grad():
            flipped = m2(adv).argmax(1) != y
        hi = torch.where(flipped, eps, hi)
        lo = torch.where(flipped, lo, eps)


def small_nets(count: int, points: int, seed: int = 0):
    """Small fully connected ReLU nets (10 -> 16 -> 16 -> 1, float32) whose boundary passes
    through the box, with points uniform in [0, 1]^10."""
    out = []
    for k in range(count):
        g = torch.Generator().manual_seed(1000 + seed + k)
        net = nn.Sequential(nn.Linear(10, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(),
                            nn.Linear(16, 1))
        with torch.no_grad():
            for m in net:
                if isinstance(m, nn.Linear):
                    m.weight.copy_(torch.randn(m.weight.shape, generator=g)
                                   / math.sqrt(m.in_features))
                    m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=g))
            net[-1].bias -= net(torch.full((1, 10), 0.5))[0]
        out.append((net, torch.rand(points, 10, generator=g)))
    return out


def run_one(name, run, net, x, norm, budget, ours_kw=None):
    """Distances (inf where no verified adversarial point), propagations used, CPU s;
    ``ours_kw``: further keyword arguments of randadv's closest_adversarial."""
    counter = PropagationCounter(net, budget=None if name == OURS else budget,
                                 box=(0.0, 1.0), norm=norm, track_best=name != OURS)
    counter.begin(x)
    torch.manual_seed(0)          # peers' random starts draw from the global RNG: reproducible
    t0 = time.process_time()
    if name == OURS:
        r = closest_adversarial(counter, x, norm, (0.0, 1.0), budget=budget, **(ours_kw or {}))
        # the totals must agree; per point they can differ by a query attributed to another
        # point: the counter attributes a query batch that is not the whole batch to the
        # nearest original, and randadv's own count knows the point (seen on the small 10-d
        # nets, whose points are about 1.3 apart in l2; randadv's count is the one checked
        # against the budget below)
        if int(r.propagations.sum()) != int(counter.used.sum()):
            raise AssertionError("randadv's own count differs from the counter's")
    else:
        with torch.no_grad():
            labels = (net(x).reshape(-1) > 0).long()
        try:
            run(TwoLogitModel(counter).eval(), x, labels, budget)
        except Exception as e:  # noqa: BLE001 - a library's crash counts as failure, reported
            print(f"    {name} at budget {budget} raised {type(e).__name__}: {e}", flush=True)
        r = counter.result(name)
    t = time.process_time() - t0
    used = (r.propagations if name == OURS else counter.used).numpy()
    if budget is not None and (used > budget).any():
        raise AssertionError(f"{name}: {int(used.max())} propagations > budget {budget}")
    return r.distance.double().numpy(), used, t


def run_points(name, run, nets_points, norm, budget):
    """One attack at one budget (None: randadv's default) on every (net, points) of a row:
    distances, propagations used (concatenated) and CPU s."""
    d, u, t = [], [], 0.0
    for net, x in nets_points:
        di, ui, ti = run_one(name, run, net, x, norm, budget)
        d.append(di)
        u.append(ui)
        t += ti
    return np.concatenate(d), np.concatenate(u), t


def reference(res, exact):
    """Per point: the exact distance where known, else the least distance any entry of
    ``res`` (name -> budget -> (distances, used, CPU s)) found."""
    best = np.min(np.stack([d for per in res.values() for d, _, _ in per.values()]), 0)
    return best if exact is None else np.where(np.isfinite(exact), exact, best)


def bench_row(label, nets_points, norm, budgets, ref_budget, exact_refs, names):
    """One row (a family of nets, one norm): results[name][budget] over all points."""
    res: dict = {}
    runs = {OURS: None, **peers(norm)}
    runs = {k: v for k, v in runs.items() if k in names or k == OURS or not names}
    all_budgets = sorted(set(budgets) | ({ref_budget} if ref_budget else set()))
    for name, run in runs.items():
        res[name] = {}
        for b in all_budgets:
            d, u, t = res[name][b] = run_points(name, run, nets_points, norm, b)
            print(f"  [{label} {norm}] {name} @ {b}: median {np.median(d):.5g}, "
                  f"success {np.isfinite(d).mean():.0%}, max used {int(u.max())}, "
                  f"{t:.1f} CPU s", flush=True)
    d, u, t = res[OURS][DEFAULT] = run_points(OURS, None, nets_points, norm, None)
    print(f"  [{label} {norm}] {OURS} @ default: median {np.median(d):.5g}, median used "
          f"{int(np.median(u))}, max used {int(u.max())}, {t:.1f} CPU s", flush=True)
    return res, reference(res, exact_refs)


def summarise(res, ref, budgets, exact=None, reference_budgets=()):
    """Per (attack, budget): the summary, and the per-point distances and propagations (and
    the exact references of the row, where known) that ``--from-json`` merges; the runs at
    ``reference_budgets`` (the reference's) too, marked ``reference_only`` (in no table, but
    in a merged row's reference)."""
    e = np.max(ref[np.isfinite(ref)])
    rows = {}
    for name, per in res.items():
        extra = [b for b in reference_budgets if b in per and b not in budgets]
        for b in [*budgets, *extra, DEFAULT] if DEFAULT in per else [*budgets, *extra]:
            d = per[b][0]
            q = d / ref
            rows[(name, b)] = {
                "median": float(np.median(q)), "p90": float(np.percentile(q, 90)),
                "success": float(np.isfinite(d).mean()),
                "optimality": float(np.mean(np.minimum(ref, e)) / np.mean(np.minimum(d, e))),
                "cpu_s": per[b][2], "max_used": int(per[b][1].max()),
                "median_used": float(np.median(per[b][1])),
                "distances": [float(v) for v in d], "used": [int(v) for v in per[b][1]]}
            if b in extra:
                rows[(name, b)]["reference_only"] = True
            if exact is not None:
                rows[(name, b)]["exact"] = [float(v) for v in exact]
    return rows


def exact_references(nets_points, norm, time_limit):
    """The exact distance per point (inf where the solve stopped at its time limit or failed:
    the point's reference is then the best attack's). A solver failure is reported and costs
    its point only (SCIP's "error in LP solver" on an l2 MIQCP, see exact/milp.py)."""
    from randadv.errors import RandadvError
    from randadv.exact import min_distance

    out = []
    for k, (net, x) in enumerate(nets_points):
        for i in range(x.shape[0]):
            try:
                e = min_distance(net, x[i:i + 1].double().float(), norm, bounds=(0.0, 1.0),
                                 time_limit=time_limit)[0]
            except RandadvError as err:
                print(f"    exact {norm} distance of net {k} point {i} failed: {err}", flush=True)
                out.append(np.inf)
                continue
            out.append(e.lower_bound if e.status == "optimal" else np.inf)
    return np.array(out, dtype=float)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fc and resnet at s = 12, the small "
                    "exact nets, 1 net x 10 points, budgets 10, 20, 100, 1000")
    ap.add_argument("--arch", default=None, help="comma-separated zoo nets (fc, lenet, "
                    "conv4, resnet) and/or 'small'")
    ap.add_argument("--sizes", default=None, help="comma-separated s (n = 3 s^2)")
    ap.add_argument("--nets", type=int, default=None)
    ap.add_argument("--points", type=int, default=10)
    ap.add_argument("--norms", default="l2,linf,l1")
    ap.add_argument("--budgets", default=None)
    ap.add_argument("--ref-budget", type=int, default=None)
    ap.add_argument("--attacks", default="", help="comma-separated peer names to keep "
                    "(default all)")
    ap.add_argument("--exact-time", type=float, default=60.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", default=None)
    ap.add_argument("--figure", default=None)
    ap.add_argument("--front-budgets", default="20,100,1000", help="budgets of --from-json's "
                    "one-line-per-row table (randadv / best peer, and randadv's default)")
    ap.add_argument("--from-json", default=None, help="comma-separated --json files of earlier "
                    "runs (e.g. one per row): print their tables and draw one figure, run nothing")
    args = ap.parse_args()
    if args.from_json:
        table = load_tables(args.from_json.split(","))
        shown = [{b for (_, b), v in rows.items() if b != DEFAULT and not v.get("reference_only")}
                 for _, _, rows in table]
        budgets = sorted(set().union(*shown))
        for (label, norm, rows), row_budgets in zip(table, shown, strict=True):
            print_row(label, norm, rows, sorted(row_budgets & {b for n, b in rows if n == OURS}))
        print_front_table(table, [int(b) for b in args.front_budgets.split(",")])
        if args.figure:
            draw(table, budgets, args.figure)
        return
    torch.set_num_threads(args.threads)
    quick = args.quick
    archs = (args.arch or ("fc,resnet,small" if quick else "small,fc,lenet,conv4,resnet")
             ).split(",")
    sizes = [int(s) for s in (args.sizes or ("12" if quick else "12,32")).split(",")]
    n_nets = args.nets or (1 if quick else 3)
    budgets = [int(b) for b in (args.budgets or ("10,20,100,1000" if quick else
                                                 "10,20,50,100,200,500,1000")).split(",")]
    ref_budget = args.ref_budget if args.ref_budget is not None else (0 if quick else 2000)
    names = [s for s in args.attacks.split(",") if s]
    import adv_lib
    import foolbox
    import torchattacks
    print(f"torch {torch.__version__}, foolbox {foolbox.__version__}, adv-lib "
          f"{getattr(adv_lib, '__version__', '0.2.8')}, torchattacks {torchattacks.__version__}; "
          f"{torch.get_num_threads()} thread(s); budgets {budgets}; reference: "
          f"{'exact (small nets), else ' if 'small' in archs else ''}best of all attacks at "
          f"budgets up to {max(budgets + [ref_budget])}", flush=True)
    table, raw = [], {}
    for arch in archs:
        for s in ([0] if arch == "small" else sizes):
            if arch == "small":
                label = "small 10-16-16-1 (exact)"
                nets_points = small_nets(n_nets, args.points)
            else:
                label = f"{arch} n={3 * s * s}"
                nets_points = []
                for k in range(n_nets):
                    net = build_architecture(arch, s, seed=k)
                    nets_points.append((net, net.sample_inputs(args.points, "bench", k)))
            for norm in args.norms.split(","):
                exact = exact_references(nets_points, norm, args.exact_time) \
                    if arch == "small" else None
                res, ref = bench_row(label, nets_points, norm, budgets, ref_budget, exact, names)
                rows = summarise(res, ref, budgets, exact, [ref_budget] if ref_budget else [])
                raw[f"{label} {norm}"] = {f"{k[0]} @ {k[1]}": v for k, v in rows.items()}
                table.append((label, norm, rows))
                print_row(label, norm, rows, budgets)
                if args.json:
                    with open(args.json, "w") as fh:
                        json.dump(raw, fh, indent=1)
    if args.figure:
        draw(table, budgets, args.figure)


def load_tables(paths):
    """The (label, norm, rows) of the ``--json`` files written by earlier runs. A row found
    in several files is merged: the entries of later files replace those of earlier ones for
    the same (attack, budget), and the summaries are recomputed against the reference of the
    merged row (the exact distance where known, else the least distance any entry found), so
    that e.g. randadv alone can be rerun after a change and joined to the peers' runs."""
    merged: dict = {}
    for path in paths:
        with open(path) as fh:
            raw = json.load(fh)
        for key, cells in raw.items():
            label, norm = key.rsplit(" ", 1)
            rows = merged.setdefault((label, norm), {})
            for name_b, v in cells.items():
                name, b = name_b.rsplit(" @ ", 1)
                rows[(name, b if b == DEFAULT else int(b))] = (path, v)
    table = []
    for (label, norm), rows in merged.items():
        if len({path for path, _ in rows.values()}) == 1:
            table.append((label, norm, {k: v for k, (_, v) in rows.items()}))
            continue
        if any("distances" not in v for _, v in rows.values()):
            raise SystemExit(f"{label} {norm}: found in several files, but some have no "
                             "per-point distances (written before they were stored): cannot "
                             "merge")
        res: dict = {}
        for (name, b), (_, v) in rows.items():
            res.setdefault(name, {})[b] = (np.array(v["distances"], dtype=float),
                                           np.array(v["used"]), v["cpu_s"])
        exact = next((np.array(v["exact"], dtype=float) for _, v in rows.values()
                      if "exact" in v), None)
        only = {b for (_, b), (_, v) in rows.items() if v.get("reference_only")}
        budgets = sorted({b for _, b in rows if b != DEFAULT} - only)
        table.append((label, norm, summarise(res, reference(res, exact), budgets, exact, only)))
    return table


def print_front_table(table, budgets):
    """One line per row: randadv's median distance / reference (its success rate) against the
    best peer's at each budget ("behind" beyond 0.1%), then randadv at its default budget."""
    print("| row, norm | " + " | ".join(f"budget {b}: randadv / best peer" for b in budgets)
          + " | default budget: randadv (median propagations) |")
    print("|---|" + "---|" * (len(budgets) + 1))
    for label, norm, rows in table:
        cells = []
        for b in budgets:
            if (OURS, b) not in rows:
                cells.append("-")
                continue
            ours = rows[(OURS, b)]
            peer = min((n for n, bb in rows if n != OURS and bb == b),
                       key=lambda n: rows[(n, b)]["median"])
            best = rows[(peer, b)]["median"]
            behind = " (behind)" if ours["median"] > best * 1.001 else ""
            cells.append(f"{ours['median']:.4f} ({ours['success']:.0%}) / {peer} "
                         f"{best:.4f}{behind}")
        d = rows.get((OURS, DEFAULT))
        cells.append("-" if d is None else f"{d['median']:.4f} ({d['median_used']:.0f})")
        print(f"| {label} {norm} | " + " | ".join(cells) + " |")


def print_row(label, norm, rows, budgets):
    names = sorted({k[0] for k in rows}, key=lambda n: (n != OURS, n))
    print(f"\n{label}, {norm}: distance / reference, median (90th percentile), success, "
          "optimality")
    print("| attack | " + " | ".join(f"{b}" for b in budgets) + " |")
    print("|---|" + "---|" * len(budgets))
    for n in names:
        cells = []
        for b in budgets:
            v = rows.get((n, b))
            cells.append("-" if v is None else f"{v['median']:.4f} ({v['p90']:.3g}) "
                         f"{v['success']:.0%} o={v['optimality']:.3f}")
        print(f"| {n} | " + " | ".join(cells) + " |")
    for b in budgets:
        peers_ = [rows[(n, b)]["median"] for n in names if n != OURS and (n, b) in rows]
        ours = rows[(OURS, b)]["median"]
        best = min(peers_) if peers_ else float("nan")
        print(f"  budget {b}: randadv {ours:.4f}, best peer {best:.4f}: "
              f"{'on the front' if ours <= best * 1.001 else 'BEHIND'}")
    if (OURS, DEFAULT) in rows:
        v = rows[(OURS, DEFAULT)]
        print(f"  default budget (budget=None, median {v['median_used']:.0f} and at most "
              f"{v['max_used']} propagations): median {v['median']:.4f} ({v['p90']:.3g}), "
              f"success {v['success']:.0%}")
    print(flush=True)


def draw(table, budgets, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = len(table)
    cols = 3
    n_rows = (k + cols - 1) // cols
    fig, axes = plt.subplots(n_rows, cols, figsize=(4.2 * cols, 3.2 * n_rows), squeeze=False)
    peer_names = sorted({n for _, _, rows in table for n, _ in rows if n != OURS})
    colour = {n: plt.get_cmap("tab20")(i % 20) for i, n in enumerate(peer_names)}
    colour[OURS] = "k"                   # one colour per attack in every panel
    for ax, (label, norm, rows) in zip(axes.flat, table, strict=False):
        names = sorted({n for n, _ in rows}, key=lambda n: (n != OURS, n))
        for n in names:
            y = [rows[(n, b)]["median"] if (n, b) in rows else np.nan for b in budgets]
            y = [v if math.isfinite(v) else np.nan for v in y]
            ax.plot(budgets, y, marker="o", lw=2.5 if n == OURS else 1.0, color=colour[n],
                    label=n)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(f"{label}, {norm}", fontsize=9)
        ax.set_xlabel("propagations per point")
        ax.set_ylabel("median distance / reference")
    for ax in list(axes.flat)[k:]:
        ax.axis("off")
    handles, labels = [], []
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=8)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
