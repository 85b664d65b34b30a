"""PyTorch side of `npm run bench`: one case of torch.nn.LSTM / torch.nn.GRU / torch.nn.RNN per process.

    python3 benches/pytorch_lstm.py '<case JSON>' <result file>
    python3 benches/pytorch_lstm.py --probe <result file>

The case JSON is the one benches/worker.js receives; the timing loop mirrors
benches/lib/measure.js (warm-up, then at least `minReps` timed repetitions,
more while the time budget lasts). The training step is forward, F.mse_loss
against a fixed target [B, T, H·directions], backward, one torch.optim.SGD step.
The runner starts this with OMP_WAIT_POLICY=PASSIVE and without
OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE; threads = os.cpu_count() (torch.set_num_threads).
"""

import json
import os
import resource
import sys
import time

from blas_info import blas_report

LEARNING_RATE = 0.01


def rss_mib():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mib():
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def time_repetitions(run, policy):
    """Same policy as benches/lib/measure.js: returns (times_ms, warmup, first value, last value)."""
    warm_start = time.perf_counter()
    first = run()
    warmup = 1
    while warmup < policy["minWarmup"] or (
        (time.perf_counter() - warm_start) * 1e3 < policy["warmupMs"] and warmup < 20
    ):
        run()
        warmup += 1
    times, last = [], None
    start = time.perf_counter()
    while len(times) < policy["minReps"] or (
        (time.perf_counter() - start) * 1e3 < policy["budgetMs"] and len(times) < policy["maxReps"]
    ):
        t0 = time.perf_counter()
        last = run()
        times.append((time.perf_counter() - t0) * 1e3)
    return times, warmup, first, last


def uniform(torch, shape, seed):
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=generator) * 2 - 1


def recurrent_module(torch, spec):
    """nn.LSTM (no peepholes: the cell odyssey runs with peepholes off), nn.GRU or nn.RNN(tanh), batch-first."""
    sizes = dict(
        input_size=spec["X"],
        hidden_size=spec["H"],
        num_layers=spec["layers"],
        bidirectional=spec["bidirectional"],
        batch_first=True,
    )
    if spec["cell"] == "rnn":
        return torch.nn.RNN(nonlinearity="tanh", **sizes)
    if spec["cell"] == "gru":
        return torch.nn.GRU(**sizes)
    return torch.nn.LSTM(**sizes)


def training_step(torch, spec):
    module = recurrent_module(torch, spec)
    optimizer = torch.optim.SGD(module.parameters(), lr=LEARNING_RATE)
    width = spec["H"] * (2 if spec["bidirectional"] else 1)
    x = uniform(torch, (spec["B"], spec["T"], spec["X"]), 1)
    target = uniform(torch, (spec["B"], spec["T"], width), 2)

    def step():
        optimizer.zero_grad(set_to_none=True)
        y, _ = module(x)
        loss = torch.nn.functional.mse_loss(y, target)
        loss.backward()
        optimizer.step()
        return loss.item()

    return step


def vqa_module(torch, sizes):
    """SPEC §4's "deeper LSTM Q + norm I", as odyssey's vqaGraph builds it (no dropout, no peepholes)."""
    functional = torch.nn.functional

    class Vqa(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.words = torch.nn.Embedding(sizes["vocab"], sizes["embedding"])
            self.lstm = torch.nn.LSTM(sizes["embedding"], sizes["hidden"], num_layers=sizes["layers"], batch_first=True)
            self.question = torch.nn.Linear(2 * sizes["layers"] * sizes["hidden"], sizes["joint"])
            self.image = torch.nn.Linear(sizes["image"], sizes["joint"])
            self.hidden = torch.nn.ModuleList(
                torch.nn.Linear(sizes["joint"], sizes["joint"]) for _ in range(sizes["denseLayers"])
            )
            self.answer = torch.nn.Linear(sizes["joint"], sizes["answers"])

        def forward(self, ids, image):
            _, (h, c) = self.lstm(self.words(ids))
            # Every layer's final y and c: [layers, B, 2H] -> [B, layers * 2H].
            states = torch.cat([h, c], dim=2).permute(1, 0, 2).reshape(ids.shape[0], -1)
            top = torch.tanh(self.question(states)) * torch.tanh(self.image(functional.normalize(image, dim=1)))
            for dense in self.hidden:
                top = torch.tanh(dense(top))
            return self.answer(top)

    return Vqa()


def vqa_training_step(torch, spec):
    sizes = spec["vqa"]
    module = vqa_module(torch, sizes)
    optimizer = torch.optim.SGD(module.parameters(), lr=LEARNING_RATE)
    generator = torch.Generator().manual_seed(4)
    ids = torch.randint(sizes["vocab"], (sizes["B"], sizes["T"]), generator=generator)
    classes = torch.randint(sizes["answers"], (sizes["B"],), generator=generator)
    image = uniform(torch, (sizes["B"], sizes["image"]), 6)

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(module(ids, image), classes)
        loss.backward()
        optimizer.step()
        return loss.item()

    return step


def seq2seq_training_step(torch, spec):
    """benches/impl/seq2seq-model.js's graph: decoder(tgt, encoder(src)[1]) over embeddings, a Linear over the vocabulary."""
    sizes = spec["seq2seq"]
    vocab, embedding, hidden = sizes["vocab"], sizes["embedding"], sizes["hidden"]

    class Seq2seq(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.src_embed = torch.nn.Embedding(vocab, embedding)
            self.tgt_embed = torch.nn.Embedding(vocab, embedding)
            self.enc = torch.nn.LSTM(embedding, hidden, batch_first=True)
            self.dec = torch.nn.LSTM(embedding, hidden, batch_first=True)
            self.out = torch.nn.Linear(hidden, vocab)

        def forward(self, src, tgt):
            _, state = self.enc(self.src_embed(src))
            y, _ = self.dec(self.tgt_embed(tgt), state)
            return self.out(y)

    module = Seq2seq()
    optimizer = torch.optim.SGD(module.parameters(), lr=LEARNING_RATE)
    generator = torch.Generator().manual_seed(7)
    src = torch.randint(vocab, (sizes["B"], sizes["srcT"]), generator=generator)
    tgt = torch.randint(vocab, (sizes["B"], sizes["tgtT"]), generator=generator)
    classes = torch.randint(vocab, (sizes["B"] * sizes["tgtT"],), generator=generator)

    def step():
        optimizer.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(module(src, tgt).reshape(-1, vocab), classes)
        loss.backward()
        optimizer.step()
        return loss.item()

    return step


def forward_pass(torch, spec):
    module = recurrent_module(torch, spec)
    x = uniform(torch, (spec["B"], spec["T"], spec["X"]), 1)

    def forward():
        with torch.inference_mode():
            module(x)

    return forward


def streaming_steps(torch, spec):
    """`spec.steps` calls of nn.LSTM on one step of one sequence, the state carried between calls."""
    module = recurrent_module(torch, spec)
    x = uniform(torch, (1, 1, spec["X"]), 3)

    def run():
        state = (torch.zeros(1, 1, spec["H"]), torch.zeros(1, 1, spec["H"]))
        with torch.inference_mode():
            for _ in range(spec["steps"]):
                _, state = module(x, state)

    return run


MODES = {
    "train": ("nn.LSTM/nn.GRU/nn.RNN + F.mse_loss + backward + optim.SGD.step", training_step),
    "forward": ("nn.LSTM/nn.RNN under torch.inference_mode()", forward_pass),
    "stream": ("nn.LSTM on [1, 1, X] with (h, c) carried, inference_mode", streaming_steps),
}


MODELS = {
    "vqa": ("SPEC §4 VQA model: nn.Embedding/LSTM/Linear + F.cross_entropy + SGD", vqa_training_step),
    "seq2seq": ("nn.Embedding → nn.LSTM encoder → nn.LSTM decoder from its (h, c) → nn.Linear + F.cross_entropy + SGD", seq2seq_training_step),
}


def import_torch():
    import torch

    torch.set_num_threads(os.cpu_count() or 1)
    return torch


def run_case(spec):
    torch = import_torch()
    api, make = MODELS[spec["model"]] if "model" in spec else MODES[spec["mode"]]
    run = make(torch, spec)
    rss_after_setup = rss_mib()
    times, warmup, first, last = time_repetitions(run, spec["policy"])
    per_call = spec["steps"] if spec["mode"] == "stream" else 1
    result = {
        "info": {"api": api, "threads": torch.get_num_threads(), "version": torch.__version__},
        "rssAfterSetupMiB": rss_after_setup,
        "timesMs": [t / per_call for t in times],
        "warmup": warmup,
        "peakRssMiB": peak_rss_mib(),
    }
    if isinstance(first, float):
        result.update(lossFirst=first, lossLast=last)
    return result


def probe():
    """What this interpreter's torch runs on: version, threads, the BLAS actually loaded, build config."""
    torch = import_torch()
    torch.mm(torch.ones(64, 64), torch.ones(64, 64))  # loads the BLAS
    return {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "parallel": torch.__config__.parallel_info(),
        "config": torch.__config__.show(),
        "blas": blas_report(),
    }


def main():
    first, result_file = sys.argv[1], sys.argv[2]
    try:
        result = probe() if first == "--probe" else run_case(json.loads(first))
    except Exception as error:  # reported in the record, the run goes on
        result = {"error": f"{type(error).__name__}: {error}"}
    with open(result_file, "w") as out:
        json.dump(result, out)


if __name__ == "__main__":
    main()
