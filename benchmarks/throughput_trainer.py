"""Training throughput of the trainer's GPT against Hugging Face GPT-2 at the same shape, plus MFU.

For each preset, three models train side by side in one process on the same random token batches
(the preset's ``micro_batch_size`` x ``block_size``), with AdamW, forward + backward + step:

- ``bimix`` - :class:`bimix_bayes.trainer.GPT` exactly as the preset configures it (rotary);
- ``bimix-learned`` - the same with GPT-2's learned absolute positions (architecture-matched);
- ``hf-gpt2`` - ``transformers.GPT2LMHeadModel`` from a ``GPT2Config`` with the same layers, width,
  heads, context and (padded) vocabulary, dropout 0, SDPA attention, randomly initialised (no
  download).

Rounds interleave the models (A B C A B C ...) so machine load hits them alike; the table reports
the median step time per model, tokens/s, the ratio to GPT-2 (target >= 1.0x) and MFU =
``flops_per_token * tokens/s / peak`` with ``flops_per_token = 6 N + 12 L d T`` (PaLM/nanoGPT
convention; N without the position table). On CUDA the step runs under bf16 autocast with TF32 and
fused AdamW (optionally ``--compile``), the paper-124m preset's 12 x 768 shape, and a default peak
of 989 TFLOP/s (H100 SXM dense bf16; pass ``--peak-tflops`` for other GPUs).

Usage::

    .venv/bin/python benchmarks/throughput_trainer.py --device cpu --presets tiny,small \\
        --threads 1 --results benchmarks/results/throughput_trainer_cpu.md
    python benchmarks/throughput_trainer.py --device cuda --presets paper-124m --compile \\
        --results benchmarks/results/throughput_trainer_cuda.md
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from reporting import uptime, write_result

from bimix_bayes.trainer import GPT, Preset

ROOT = Path(__file__).resolve().parents[1]
GPU_PEAK_TFLOPS = 989.0  # H100 SXM, dense bf16


def cpu_peak_flops(threads: int) -> tuple[float, str]:
    """fp32 peak of ``threads`` cores: GHz x 2 AVX-512 FMA units x 16 lanes x 2 FLOPs."""
    mhz = max(float(line.split(":")[1]) for line in open("/proc/cpuinfo")
              if line.startswith("cpu MHz"))
    per_core = 2 * 16 * 2 if "avx512f" in open("/proc/cpuinfo").read() else 2 * 8 * 2
    return threads * mhz * 1e6 * per_core, (f"{threads} core(s) x {mhz / 1e3:.2f} GHz x "
                                            f"{per_core} fp32 FLOP/cycle (2 FMA units x "
                                            f"{per_core // 4} lanes x 2)")


def build(kind: str, preset: Preset, vocab: int, device: torch.device) -> torch.nn.Module:
    m = preset.model
    if kind == "hf-gpt2":
        from transformers import GPT2Config, GPT2LMHeadModel

        cfg = GPT2Config(vocab_size=vocab, n_positions=m.block_size, n_embd=m.n_embd,
                         n_layer=m.n_layer, n_head=m.n_head, n_inner=m.mlp_ratio * m.n_embd,
                         resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, use_cache=False,
                         tie_word_embeddings=True, bos_token_id=0, eos_token_id=0,
                         attn_implementation="sdpa")
        return GPT2LMHeadModel(cfg).to(device)
    config = m if kind == "bimix" else Preset.from_dict(
        {"name": "x", "model": {**preset.to_dict()["model"], "positions": "learned"}}).model
    return GPT(config, vocab).to(device)


def flops_per_token(model: torch.nn.Module, preset: Preset) -> float:
    m = preset.model
    pos = sum(p.numel() for n, p in model.named_parameters() if "wpe" in n)
    n = sum(p.numel() for p in model.parameters()) - pos
    return 6.0 * n + 12.0 * m.n_layer * m.n_embd * m.block_size


def make_step(kind: str, model: torch.nn.Module, device: torch.device, compile_: bool):
    fused = device.type == "cuda"
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=fused)
    fwd = torch.compile(model) if compile_ else model
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else None

    def step(batch: torch.Tensor) -> None:
        x, y = batch[:, :-1], batch[:, 1:]
        with autocast or torch.autocast("cpu", enabled=False):
            if kind == "hf-gpt2":
                loss = fwd(input_ids=x, labels=batch[:, :-1]).loss  # HF shifts labels itself
            else:
                loss = fwd(x, y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def bench_preset(name: str, args: argparse.Namespace, device: torch.device) -> list[dict]:
    preset = Preset.load(name)  # a packaged preset
    vocab = -(-args.vocab // preset.model.vocab_multiple) * preset.model.vocab_multiple
    b, t = preset.train.micro_batch_size, preset.model.block_size
    gen = torch.Generator().manual_seed(0)
    batch = torch.randint(0, args.vocab, (b, t + 1), generator=gen).to(device)
    kinds = ["bimix", "bimix-learned", "hf-gpt2"]
    models, steps, times = {}, {}, {k: [] for k in kinds}
    for k in kinds:
        torch.manual_seed(0)
        models[k] = build(k, preset, vocab, device)
        steps[k] = make_step(k, models[k], device, args.compile)
        for _ in range(args.warmup):
            steps[k](batch)
        sync(device)
    for _ in range(args.rounds):
        for k in kinds:
            sync(device)
            t0 = time.perf_counter()
            for _ in range(args.steps):
                steps[k](batch)
            sync(device)
            times[k].append((time.perf_counter() - t0) / args.steps)
    rows = []
    for k in kinds:
        sec = statistics.median(times[k])
        rows.append({"preset": name, "model": k, "batch": f"{b} x {t}",
                     "params": sum(p.numel() for p in models[k].parameters()),
                     "sec": sec, "tps": b * t / sec,
                     "flops": flops_per_token(models[k], preset),
                     "spread": (max(times[k]) - min(times[k])) / sec})
        print(f"{name:>10} {k:>14}: {sec * 1e3:9.1f} ms/step  {b * t / sec:12,.0f} tok/s",
              file=sys.stderr)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--presets", default="tiny,small")
    parser.add_argument("--vocab", type=int, default=257, help="tokenizer vocabulary (byte: 257)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--peak-tflops", type=float, default=None)
    parser.add_argument("--results", type=Path, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        peak = (args.peak_tflops or GPU_PEAK_TFLOPS) * 1e12
        peak_text = f"{peak / 1e12:.0f} TFLOP/s bf16 ({torch.cuda.get_device_name()})"
    else:
        peak, peak_text = cpu_peak_flops(torch.get_num_threads())
        if args.peak_tflops:
            peak, peak_text = args.peak_tflops * 1e12, f"{args.peak_tflops} TFLOP/s (given)"
    load_before = uptime()
    rows = [r for name in args.presets.split(",") for r in bench_preset(name, args, device)]
    load_after = uptime()

    lines = [
        f"# Trainer throughput ({device.type})", "",
        f"- date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC",
        f"- machine: {platform.machine()}, nproc {os.cpu_count()}, torch threads "
        f"{torch.get_num_threads()}, torch {torch.__version__}",
        f"- load before: {load_before}", f"- load after: {load_after}",
        f"- command: `{' '.join([Path(sys.executable).name, *sys.argv])}`",
        f"- per step: forward + backward + AdamW on one micro batch; {args.warmup} warm-up "
        f"steps, then {args.rounds} interleaved rounds of {args.steps} timed steps per model; "
        "median step time",
        f"- dtype: {'bf16 autocast + TF32' if device.type == 'cuda' else 'fp32'}; "
        f"compile: {args.compile}; vocabulary {args.vocab} padded to the preset's multiple",
        f"- MFU peak: {peak_text}", "",
        "| preset | model | batch | params | ms/step | tokens/s | vs hf-gpt2 | MFU | spread |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        hf = next(x for x in rows if x["preset"] == r["preset"] and x["model"] == "hf-gpt2")
        lines.append(
            f"| {r['preset']} | {r['model']} | {r['batch']} | {r['params'] / 1e6:.2f}M | "
            f"{r['sec'] * 1e3:.1f} | {r['tps']:,.0f} | {r['tps'] / hf['tps']:.2f}x | "
            f"{r['flops'] * r['tps'] / peak:.1%} | {r['spread']:.0%} |")
    lines += ["", "spread: (slowest - fastest round) / median, a measure of the machine noise."]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.results:
        write_result(args.results, text)


if __name__ == "__main__":
    main()
