/**
 * Live checks against PyTorch itself (/usr/bin/python3 with torch and torchvision): files torchcap
 * writes open with `torch.load` (and `weights_only=True`) and load into `nn.Module`s and optimizers;
 * files Python writes (a random torchvision resnet18, zip and legacy) read back entry for entry;
 * the hostile fixtures' payloads really run under Python's own unpickler, and not under torchcap's.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Tensor, manualSeed } from '../lib/core/tensor';
import type { DType } from '../lib/core/binding';
import { OrderedDict, PyFloat, pickle, pyTuple, readStateDict, readTorchFile, saveSafetensors, saveTorchFile } from '../lib/serialization';
import { readPickleFile } from '../lib/serialization/pickle-file';
import { rejected } from './support/errors';
import { pythonHas, runPython } from './support/python';
import { handMadeLegacy } from './serialization-helpers';
import { describeIf } from './support/skip';

const HAVE_TORCH = pythonHas('torch', 'torchvision');
const FIXTURES = path.join(__dirname, 'fixtures', 'serialization');

/** Python: `describe(t)` gives dtype, shape and flat values as the tests compare them. */
const DESCRIBE = `
import json, sys, collections, torch
def describe(t):
    t = t.detach()
    if t.dtype == torch.int64: values = [str(v) for v in t.flatten().tolist()]
    elif t.dtype in (torch.float16, torch.bfloat16): values = t.float().flatten().tolist()
    else: values = t.flatten().tolist()
    return {"dtype": str(t.dtype).replace("torch.", ""), "shape": list(t.shape), "values": values}
`;

interface Described {
  dtype: string;
  shape: number[];
  values: (number | string | boolean)[];
}

function describe(t: Tensor): Described {
  let values: (number | string | boolean)[];
  if (t.dtype === 'int64') values = Array.from(t.toTypedArray() as BigInt64Array, (v) => String(v));
  else if (t.dtype === 'bool') values = Array.from(t.toTypedArray() as Uint8Array, (v) => v !== 0);
  else if (t.dtype === 'float16' || t.dtype === 'bfloat16') values = Array.from(t.to('float32').toTypedArray() as Float32Array);
  else values = Array.from(t.toTypedArray() as Float32Array);
  return { dtype: t.dtype, shape: t.shape, values };
}

function sample(): Map<string, Tensor> {
  return new Map<string, Tensor>([
    ['f32', Tensor.randn([3, 4])],
    ['f64', Tensor.from([Math.PI, -1e300], { dtype: 'float64' })],
    ['f16', Tensor.from([0.5, -65504], { dtype: 'float16' })],
    ['bf16', Tensor.from([1, -3e38], { dtype: 'bfloat16' })],
    ['i64', Tensor.from(BigInt64Array.from([0n, -5n, 2n ** 62n]))],
    ['i32', Tensor.from(Int32Array.from([2 ** 31 - 1, -(2 ** 31)]))],
    ['u8', Tensor.from(Uint8Array.from([0, 255]))],
    ['bool', Tensor.from([true, false, true])],
    ['scalar', Tensor.from(2.5)],
    ['empty', Tensor.zeros([0, 3])],
    ['transposed', Tensor.randn([3, 5]).transpose(0, 1)],
  ]);
}

let tmp = '';
beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'torchcap-serialization-live-'));
});
afterAll(() => {
  fs.rmSync(tmp, { recursive: true, force: true });
});

describeIf(HAVE_TORCH, `${process.env.TORCHCAP_PYTHON ?? '/usr/bin/python3'} cannot import torch and torchvision`, 'live: PyTorch reads what torchcap writes', () => {
  test('torch.load (also weights_only=True) gives every dtype back exactly', async () => {
    const file = path.join(tmp, 'all.pt');
    const sd = sample();
    await saveTorchFile(file, sd);
    const out = runPython(
      `${DESCRIBE}
sd = torch.load(sys.argv[1])
assert type(sd) is collections.OrderedDict, type(sd)
safe = torch.load(sys.argv[1], weights_only=True)
assert list(safe) == list(sd)
print(json.dumps({k: describe(v) for k, v in sd.items()}))`,
      [file],
    );
    const got = JSON.parse(out) as Record<string, Described>;
    expect(Object.keys(got)).toEqual([...sd.keys()]);
    for (const [k, t] of sd) expect([k, got[k]]).toEqual([k, describe(t)]);
  });

  test('model.load_state_dict(torch.load(file)) on a matching nn.Module', async () => {
    manualSeed(3);
    const file = path.join(tmp, 'decoder.ckpt');
    const sd = new Map<string, Tensor>([
      ['embedding_layer.weight', Tensor.randn([10, 4])],
      ['lstm_layer.weight_ih_l0', Tensor.randn([12, 4])],
      ['lstm_layer.weight_hh_l0', Tensor.randn([12, 3])],
      ['lstm_layer.bias_ih_l0', Tensor.randn([12])],
      ['lstm_layer.bias_hh_l0', Tensor.randn([12])],
      ['linear_layer.weight', Tensor.randn([10, 3])],
      ['linear_layer.bias', Tensor.randn([10])],
      ['batch_norm.weight', Tensor.rand([4])],
      ['batch_norm.bias', Tensor.randn([4])],
      ['batch_norm.running_mean', Tensor.randn([4])],
      ['batch_norm.running_var', Tensor.rand([4])],
      ['batch_norm.num_batches_tracked', Tensor.from(5, { dtype: 'int64' })],
    ]);
    await saveTorchFile(file, sd);
    const out = runPython(
      `${DESCRIBE}
import torch.nn as nn
class M(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding_layer = nn.Embedding(10, 4)
        self.lstm_layer = nn.LSTM(4, 3, 1, batch_first=True)
        self.linear_layer = nn.Linear(3, 10)
        self.batch_norm = nn.BatchNorm1d(4, momentum=0.01)
m = M()
m.load_state_dict(torch.load(sys.argv[1]))
m.eval()
with torch.no_grad():
    y = m.linear_layer(m.lstm_layer(m.embedding_layer(torch.tensor([[1, 2, 3]])))[0])
print(json.dumps({"state": {k: describe(v) for k, v in m.state_dict().items()}, "y": describe(y)}))`,
      [file],
    );
    const got = JSON.parse(out) as { state: Record<string, Described>; y: Described };
    for (const [k, t] of sd) expect([k, got.state[k]]).toEqual([k, describe(t)]);
    expect(got.y.shape).toEqual([1, 3, 10]);
  });

  test('a checkpoint with Adam state resumes in Python', async () => {
    const file = path.join(tmp, 'resume.ckpt');
    const w = Tensor.randn([2, 3]);
    const b = Tensor.randn([2]);
    const state = new Map<number, unknown>([
      [0, { step: Tensor.from(4), exp_avg: Tensor.randn([2, 3]).mul(0.01), exp_avg_sq: Tensor.rand([2, 3]).mul(0.001) }],
      [1, { step: Tensor.from(4), exp_avg: Tensor.randn([2]).mul(0.01), exp_avg_sq: Tensor.rand([2]).mul(0.001) }],
    ]);
    const ck = {
      model: new Map([['weight', w], ['bias', b]]),
      optimizer: { state, param_groups: [{ lr: 0.001, betas: pyTuple(0.9, 0.999), eps: 1e-8, weight_decay: 0, amsgrad: false, params: [0, 1] }] },
      epoch: 3,
      loss: new PyFloat(2),
    };
    await saveTorchFile(file, ck);
    const out = runPython(
      `${DESCRIBE}
import torch.nn as nn
ck = torch.load(sys.argv[1])
assert isinstance(ck["loss"], float) and ck["epoch"] == 3
m = nn.Linear(3, 2)
m.load_state_dict(ck["model"])
opt = torch.optim.Adam(m.parameters(), lr=0.5)
opt.load_state_dict(ck["optimizer"])
assert opt.param_groups[0]["lr"] == 0.001 and opt.param_groups[0]["betas"] == (0.9, 0.999)
m(torch.ones(1, 3)).sum().backward()
opt.step()
st = opt.state_dict()["state"]
print(json.dumps({"step": float(st[0]["step"]), "weight": describe(m.weight)}))`,
      [file],
    );
    const got = JSON.parse(out) as { step: number; weight: Described };
    expect(got.step).toBe(5);
    expect(got.weight.shape).toEqual([2, 3]);
    expect(got.weight.values).not.toEqual(describe(w).values); // it took a step from the saved state
  });

  test('zip64 records and safetensors files open in Python', async () => {
    const zip64 = path.join(tmp, 'zip64.pt');
    const st = path.join(tmp, 'model.safetensors');
    const sd = sample();
    await saveTorchFile(zip64, sd, { forceZip64: true });
    await saveSafetensors(st, sd, { format: 'pt' });
    const out = runPython(
      `${DESCRIBE}
import struct
sd = torch.load(sys.argv[1])
raw = open(sys.argv[2], "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
header = json.loads(raw[8:8 + n])
dt = {"F32": torch.float32, "F64": torch.float64, "F16": torch.float16, "BF16": torch.bfloat16, "I64": torch.int64,
      "I32": torch.int32, "U8": torch.uint8, "BOOL": torch.bool}
st = {}
for k, v in header.items():
    if k == "__metadata__": continue
    b, e = v["data_offsets"]
    data = bytearray(raw[8 + n + b: 8 + n + e])
    t = torch.frombuffer(data, dtype=dt[v["dtype"]]) if data else torch.empty(0, dtype=dt[v["dtype"]])
    st[k] = t.reshape(v["shape"])
print(json.dumps({"zip64": {k: describe(v) for k, v in sd.items()}, "st": {k: describe(v) for k, v in st.items()}, "meta": header["__metadata__"]}))`,
      [zip64, st],
    );
    const got = JSON.parse(out) as { zip64: Record<string, Described>; st: Record<string, Described>; meta: unknown };
    for (const [k, t] of sd) {
      expect([k, got.zip64[k]]).toEqual([k, describe(t)]);
      expect([k, got.st[k]]).toEqual([k, describe(t)]);
    }
    expect(got.meta).toEqual({ format: 'pt' });
  });

  test('pickles torchcap writes are what Python reads', () => {
    const od = new OrderedDict<string, unknown>([['z', 1], ['a', 2]]);
    const value = {
      list: [1, 2.5, null, true, false, 'naïve'],
      tuple: pyTuple(1, 'x', pyTuple()),
      bytes: Buffer.from([0, 128, 255]),
      big: 2n ** 70n,
      negative: -(2 ** 40),
      float: new PyFloat(3),
      set: new Set([1, 2]),
      od,
      ints: new Map([[1, 'one'], [2, 'two']]),
    };
    const file = path.join(tmp, 'value.pkl');
    fs.writeFileSync(file, pickle(value));
    const out = runPython(
      `import pickle, sys, collections
v = pickle.load(open(sys.argv[1], "rb"))
expected = {"list": [1, 2.5, None, True, False, "naïve"], "tuple": (1, "x", ()), "bytes": b"\\x00\\x80\\xff", "big": 2 ** 70,
            "negative": -(2 ** 40), "float": 3.0, "set": {1, 2}, "od": collections.OrderedDict([("z", 1), ("a", 2)]), "ints": {1: "one", 2: "two"}}
assert v == expected, v
assert type(v["od"]) is collections.OrderedDict and list(v["od"]) == ["z", "a"]
assert type(v["float"]) is float and type(v["tuple"]) is tuple
print("ok")`,
      [file],
    );
    expect(out.trim()).toBe('ok');
  });
});

describeIf(HAVE_TORCH, `${process.env.TORCHCAP_PYTHON ?? '/usr/bin/python3'} cannot import torch and torchvision`, 'live: torchcap reads what PyTorch writes', () => {
  test('a random torchvision resnet18: all 122 entries, zip and legacy, equal to the bytes Python holds', async () => {
    const out = runPython(
      `import json, sys, os, torch, torchvision
torch.manual_seed(18)
m = torchvision.models.resnet18()
with torch.no_grad():
    for mod in m.modules():
        if isinstance(mod, torch.nn.BatchNorm2d):
            mod.running_mean.normal_(); mod.running_var.uniform_(0.5, 2); mod.num_batches_tracked.fill_(11)
sd = m.state_dict()
d = sys.argv[1]
torch.save(sd, os.path.join(d, "r18.pt"))
torch.save(sd, os.path.join(d, "r18_legacy.pt"), _use_new_zipfile_serialization=False)
index, at = [], 0
with open(os.path.join(d, "r18.bin"), "wb") as f:
    for k, v in sd.items():
        b = v.contiguous().numpy().tobytes()
        f.write(b)
        index.append({"name": k, "dtype": str(v.dtype).replace("torch.", ""), "shape": list(v.shape), "offset": at, "bytes": len(b)})
        at += len(b)
print(json.dumps(index))`,
      [tmp],
    );
    const index = JSON.parse(out) as { name: string; dtype: DType; shape: number[]; offset: number; bytes: number }[];
    expect(index.length).toBe(122);
    const raw = fs.readFileSync(path.join(tmp, 'r18.bin'));
    for (const name of ['r18.pt', 'r18_legacy.pt']) {
      const sd = await readStateDict(path.join(tmp, name));
      expect([...sd.keys()]).toEqual(index.map((e) => e.name));
      for (const e of index) {
        const want = Tensor.fromBytes(raw.subarray(e.offset, e.offset + e.bytes), e.dtype, e.shape);
        const t = sd.get(e.name)!;
        expect([name, e.name, t.dtype, t.shape]).toEqual([name, e.name, e.dtype, e.shape]);
        expect([name, e.name, t.equal(want)]).toEqual([name, e.name, true]);
      }
    }
  });

  test('legacy storage views mean what PyTorch makes of them', async () => {
    const file = path.join(tmp, 'views_legacy.pt');
    fs.writeFileSync(file, handMadeLegacy(true));
    const out = runPython(`${DESCRIBE}\nprint(json.dumps({k: describe(v) for k, v in torch.load(sys.argv[1]).items()}))`, [file]);
    const got = JSON.parse(out) as Record<string, Described>;
    const mine = (await readTorchFile(file)) as Map<string, Tensor>;
    for (const [k, t] of mine) expect([k, got[k]]).toEqual([k, describe(t)]);
  });

  test("the hostile fixtures' payloads run under Python's unpickler, and not under torchcap's", async () => {
    const marker = (JSON.parse(fs.readFileSync(path.join(FIXTURES, 'expected.json'), 'utf8')) as { marker: string }).marker;
    const names = ['evil_os_system.pkl', 'evil_os_system_p4.pkl', 'evil_eval.pkl', 'evil_popen.pkl', 'evil_newobj.pkl', 'evil_state_dict.pt', 'evil_legacy.pt'];
    const dirs = names.map(() => fs.mkdtempSync(path.join(tmp, 'payload-')));
    runPython(
      `import os, sys, time, pickle, torch
marker, args = sys.argv[1], sys.argv[2:]
for f, d in zip(args[0::2], args[1::2]):
    os.chdir(d)
    try:
        torch.load(f) if f.endswith(".pt") else pickle.load(open(f, "rb"))
    except Exception:
        pass
for d in args[1::2]:
    for _ in range(50):
        if os.path.exists(os.path.join(d, marker)): break
        time.sleep(0.05)`,
      [marker, ...names.flatMap((n, i) => [path.join(FIXTURES, n), dirs[i]])],
    );
    for (const [i, name] of names.entries()) {
      expect([name, fs.existsSync(path.join(dirs[i], marker))]).toEqual([name, true]);
      const e = name.endsWith('.pt') ? await rejected(readTorchFile(path.join(FIXTURES, name))) : await rejected(readPickleFile(path.join(FIXTURES, name)));
      expect([name, e.name]).toEqual([name, 'UnpicklingError']);
    }
    expect(fs.existsSync(path.join(process.cwd(), marker))).toBe(false);
  });
});
