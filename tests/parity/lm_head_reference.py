#!/usr/bin/python3
"""Golden values for the LM-head ops of models/lm_head.h, from PyTorch in float64.

A tiny fixed case (N=3 positions, H=4, V=6, the teacher's top K=2): student and teacher hidden
states and output weights from closed formulas, rounded to float32 (the dtype distillery computes
in), then in float64 with torch.nn.functional:

  * summed cross-entropy, per-token log-probs of the targets and per-token entropy;
  * TRL's GKD generalized JSD (trl/experimental/gkd/gkd_trainer.py, generalized_jsd_loss; Agarwal
    et al. 2024, arXiv:2306.13649, eq. 1) summed over the positions, written out here with
    F.log_softmax, F.kl_div(log_target=True) and the log-mixture as TRL defines it: beta = 0 is
    KL(teacher || student), beta = 1 KL(student || teacher), otherwise
    beta KL(teacher || m) + (1 - beta) KL(student || m) with m = (1 - beta) student + beta teacher;
    logits divided by the temperature, no temperature^2 factor;
  * the same against the teacher's top-K log-probs at temperature 1 with the tail bucket of
    lm_head.h (DistillKit's SYMMETRIC_UNIFORM): both distributions over the K ids plus "any other
    token", the teacher's buckets divided by the temperature and renormalized.

The output, tests/assets/lm_head_golden.json, holds the inputs (float32 values, the top-k ids and
log-probs) and the expected numbers; tests/unit/models/lm_head_test.cpp reads both.

    /usr/bin/python3 tests/parity/lm_head_reference.py          # rewrite the expectations
    /usr/bin/python3 tests/parity/lm_head_reference.py --check  # exit 1 if they are stale
"""

import argparse
import json
import math
import os
import sys

import torch
import torch.nn.functional as F

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "assets", "lm_head_golden.json")
N, H, V, K = 3, 4, 6, 2
BETAS = [0.0, 0.5, 1.0]
TEMPERATURES = [1.0, 2.0]


def grid(rows, cols, f):
    """[rows, cols] float32 with entry f(r, c), computed in float64 and rounded once."""
    return torch.tensor([[f(r, c) for c in range(cols)] for r in range(rows)], dtype=torch.float64).float()


def generalized_jsd(student_log_probs, teacher_log_probs, beta):
    """Per-position generalized JSD of log-probabilities [N, X], summed over the X outcomes."""
    if beta == 0:
        per_entry = F.kl_div(student_log_probs, teacher_log_probs, reduction="none", log_target=True)
    elif beta == 1:
        per_entry = F.kl_div(teacher_log_probs, student_log_probs, reduction="none", log_target=True)
    else:
        b = torch.tensor(beta, dtype=torch.float64)
        mixture = torch.logsumexp(torch.stack([student_log_probs + torch.log1p(-b), teacher_log_probs + torch.log(b)]), 0)
        per_entry = beta * F.kl_div(mixture, teacher_log_probs, reduction="none", log_target=True) + (
            1 - beta
        ) * F.kl_div(mixture, student_log_probs, reduction="none", log_target=True)
    return per_entry.sum(-1)


def buckets(log_probs, ids):
    """Log-probs [N, V] over the vocabulary -> [N, K + 1]: the ids, then everything else."""
    top = log_probs.gather(1, ids)
    rest = log_probs.scatter(1, ids, float("-inf"))
    return torch.cat([top, torch.logsumexp(rest, 1, keepdim=True)], 1)


def teacher_buckets(top_log_probs, temperature):
    """The teacher's stored top-k log-probs [N, K] -> its tempered [N, K + 1] buckets."""
    tail = torch.log(-torch.expm1(torch.logsumexp(top_log_probs, 1, keepdim=True).clamp(max=0)))
    b = torch.cat([top_log_probs, tail], 1) / temperature
    return b - torch.logsumexp(b, 1, keepdim=True)


def compute():
    hs = grid(N, H, lambda n, j: 2 * math.sin(1.3 * n + 0.7 * j + 0.2))
    ws = grid(V, H, lambda v, j: math.cos(0.9 * v - 0.4 * j + 0.5))
    ht = grid(N, H, lambda n, j: 2 * math.sin(0.5 * n - 1.1 * j + 0.3))
    wt = grid(V, H, lambda v, j: math.cos(1.7 * v + 0.6 * j - 0.2))
    targets = torch.tensor([1, 4, 0])
    zs = hs.double() @ ws.double().T  # [N, V]
    zt = ht.double() @ wt.double().T
    # The offline store: the teacher's K most likely ids and their log-probs at temperature 1, float32.
    teacher_lp = F.log_softmax(zt, -1)
    top_lp, ids = teacher_lp.topk(K, -1)
    top_lp = top_lp.float()

    ls = F.log_softmax(zs, -1)
    out = {
        "inputs": {
            "student_hidden": hs.tolist(), "student_weight": ws.tolist(),
            "teacher_hidden": ht.tolist(), "teacher_weight": wt.tolist(),
            "targets": targets.tolist(), "top_k_ids": ids.tolist(), "top_k_logprobs": top_lp.tolist(),
        },
        "cross_entropy_sum": F.cross_entropy(zs, targets, reduction="sum").item(),
        "token_log_probs": ls.gather(1, targets[:, None])[:, 0].tolist(),
        "entropy": (-(ls.exp() * ls).sum(-1)).tolist(),
        "dense_jsd_sum": [],
        "top_k_jsd_sum": [],
    }
    for beta in BETAS:
        for t in TEMPERATURES:
            s_lp, t_lp = F.log_softmax(zs / t, -1), F.log_softmax(zt / t, -1)
            dense = generalized_jsd(s_lp, t_lp, beta).sum().item()
            sparse = generalized_jsd(buckets(s_lp, ids), teacher_buckets(top_lp.double(), t), beta).sum().item()
            out["dense_jsd_sum"].append({"beta": beta, "temperature": t, "value": dense})
            out["top_k_jsd_sum"].append({"beta": beta, "temperature": t, "value": sparse})
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the stored expectations are stale")
    args = parser.parse_args()
    text = json.dumps(compute(), indent=1) + "\n"
    if args.check:
        with open(OUT) as f:
            if f.read() != text:
                print(f"{OUT} is stale: rerun {sys.argv[0]}", file=sys.stderr)
                sys.exit(1)
        return
    with open(OUT, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
