"""torch.distributed allreduce on CPU with the gloo backend, measured like bench_allreduce.cpp:
what a PyTorch user would run instead of distillery's MPI communicator.

    /usr/bin/python3 bench/bench_allreduce_gloo.py [--ranks 2] [--max-mb 64] [--dtype float32|bfloat16]
"""
import argparse
import os
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def run(rank, world, max_mb, dtype):
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    os.environ.setdefault("MASTER_PORT", "29533")
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    if rank == 0:
        print(f"# allreduce sum, {dtype}, {world} ranks, backend gloo (torch {torch.__version__})")
        print(f"{'bytes':>10} {'iters':>8} {'time_us':>12} {'algbw_GB/s':>12} {'busbw_GB/s':>12}")
    elem = torch.tensor([], dtype=dtype).element_size()
    nbytes = 1024
    while nbytes <= max_mb << 20:
        t = torch.ones(nbytes // elem, dtype=dtype)
        for _ in range(3):
            dist.all_reduce(t)
        dist.barrier()
        t0 = time.perf_counter()
        dist.all_reduce(t)
        iters = torch.tensor([max(5, int(0.3 / max(time.perf_counter() - t0, 1e-7)))])
        dist.broadcast(iters, 0)
        iters = min(int(iters.item()), 20000)
        dist.barrier()
        t0 = time.perf_counter()
        for _ in range(iters):
            dist.all_reduce(t)
        elapsed = torch.tensor([(time.perf_counter() - t0) / iters], dtype=torch.float64)
        dist.all_reduce(elapsed, op=dist.ReduceOp.MAX)
        sec = elapsed.item()
        algbw = nbytes / sec / 1e9
        if rank == 0:
            print(f"{nbytes:>10} {iters:>8} {sec * 1e6:>12.1f} {algbw:>12.3f} {algbw * 2 * (world - 1) / world:>12.3f}")
        nbytes *= 2
    dist.destroy_process_group()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--max-mb", type=int, default=64)
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    args = parser.parse_args()
    mp.spawn(run, args=(args.ranks, args.max_mb, getattr(torch, args.dtype)), nprocs=args.ranks)
