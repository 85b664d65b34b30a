"""PyTorch reads the weights the browser example downloads (__test__/browser-example.test.ts).

torch 1.13 (Debian's python3-torch) has no safetensors package, so the file is read as the
format says: an 8-byte little-endian header length, the header's JSON, then every tensor's
bytes at its data_offsets. The model is the example's: a simple RNN (nn.RNN, tanh) or an LSTM
with peepholes (SPEC §1, which nn.LSTM lacks: written out with PyTorch's gate order i, f, g, o),
its last step into nn.Linear. Prints the predictions of each file's model for the inputs, as a
JSON list of lists (one torch start for both models).

    python3 torch_predict_adding.py inputs.json weights.safetensors [weights.safetensors ...]
    (inputs.json: {"data": [...], "shape": [n, time, features]})
"""
import json
import struct
import sys

import torch

DTYPES = {"F32": torch.float32, "F64": torch.float64}


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (length,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + length])
    header.pop("__metadata__", None)
    body = data[8 + length :]
    tensors = {}
    for name, entry in header.items():
        begin, end = entry["data_offsets"]
        flat = torch.frombuffer(bytearray(body[begin:end]), dtype=DTYPES[entry["dtype"]])
        tensors[name] = flat.reshape(entry["shape"])
    return tensors


def node_state(tensors, node):
    return {name.split(".", 1)[1]: t for name, t in tensors.items() if name.startswith(node + ".")}


def peephole_lstm_last(x, w):
    """SPEC §1 forward, batch first; returns y(T)."""
    hidden = w["weight_hh_l0"].shape[1]
    h = x.new_zeros(x.shape[0], hidden)
    c = x.new_zeros(x.shape[0], hidden)
    for t in range(x.shape[1]):
        gates = x[:, t] @ w["weight_ih_l0"].T + h @ w["weight_hh_l0"].T + w["bias_ih_l0"] + w["bias_hh_l0"]
        i, f, g, o = gates.chunk(4, dim=1)
        i = torch.sigmoid(i + w["peephole_i_l0"] * c)
        f = torch.sigmoid(f + w["peephole_f_l0"] * c)
        c = torch.tanh(g) * i + c * f
        o = torch.sigmoid(o + w["peephole_o_l0"] * c)
        h = o * torch.tanh(c)
    return h


def predict(tensors, x):
    dense = torch.nn.Linear(tensors["dense.weight"].shape[1], 1)
    dense.load_state_dict(node_state(tensors, "dense"))
    with torch.no_grad():
        if "rnn.weight_ih_l0" in tensors:
            state = node_state(tensors, "rnn")
            rnn = torch.nn.RNN(x.shape[2], state["weight_hh_l0"].shape[1], batch_first=True)
            rnn.load_state_dict(state)  # strict: exactly nn.RNN's keys and shapes
            last = rnn(x)[0][:, -1]
        else:
            last = peephole_lstm_last(x, node_state(tensors, "lstm"))
        return dense(last).flatten().tolist()


def main():
    with open(sys.argv[1]) as f:
        inputs = json.load(f)
    x = torch.tensor(inputs["data"], dtype=torch.float32).reshape(inputs["shape"])
    print(json.dumps([predict(read_safetensors(path), x) for path in sys.argv[2:]]))


main()
