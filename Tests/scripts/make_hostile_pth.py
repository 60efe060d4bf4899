"""Independent reference and hostile inputs for PyTorchCheckpointTests (no torch needed).

reference FILE  -> JSON {name: {"shape", "sha256" (contiguous LE bytes), "first"}} read with
                   zipfile + a restricted pickle.Unpickler that maps the torch globals to numpy.
make DIR        -> writes valid.pth (f16/bf16 storages, a strided tensor), its valid.json, and hostile files.
"""
import collections, datetime, hashlib, io, json, os, pickle, sys, types, zipfile
import numpy as np

DT = {"FloatStorage": np.float32, "HalfStorage": np.float16, "BFloat16Storage": "bf16"}

def reference(path):
    z = zipfile.ZipFile(path)
    folder = z.namelist()[0].split("/")[0]
    def rebuild(storage, offset, size, stride, *rest):
        arr, es = storage
        v = np.lib.stride_tricks.as_strided(arr[offset:], shape=size, strides=[s * es for s in stride])
        return np.ascontiguousarray(v)
    class U(pickle.Unpickler):
        def find_class(self, mod, name):
            if (mod, name) == ("collections", "OrderedDict"): return collections.OrderedDict
            if (mod, name) == ("torch._utils", "_rebuild_tensor_v2"): return rebuild
            if mod == "torch" and name in DT: return name
            raise pickle.UnpicklingError(f"refused {mod}.{name}")
        def persistent_load(self, pid):
            _, kind, key, _, numel = pid
            raw = z.read(f"{folder}/data/{key}")
            dt = np.uint16 if DT[kind] == "bf16" else DT[kind]
            a = np.frombuffer(raw, dtype=dt)
            return (a, a.itemsize)
    sd = U(io.BytesIO(z.read(f"{folder}/data.pkl"))).load()
    out = {}
    for k, v in sd.items():
        first = v.reshape(-1)[:4]
        out[k] = {"shape": list(v.shape), "sha256": hashlib.sha256(v.tobytes()).hexdigest(),
                  "first": [float(x) for x in (first.astype(np.float32) if v.dtype != np.uint16 else (first.astype(np.uint32) << 16).view(np.float32))]}
    print(json.dumps(out))

# Fake torch modules so that pickle writes exactly the globals torch.save writes.
torch = types.ModuleType("torch"); utils = types.ModuleType("torch._utils")
sys.modules["torch"] = torch; sys.modules["torch._utils"] = utils; torch._utils = utils
for n in DT:
    setattr(torch, n, type(n, (), {"__module__": "torch"}))
def _rebuild_tensor_v2(*a): pass
_rebuild_tensor_v2.__module__ = "torch._utils"; utils._rebuild_tensor_v2 = _rebuild_tensor_v2

class Storage:
    def __init__(self, kind, key, numel): self.kind, self.key, self.numel = kind, key, numel
class T:
    def __init__(self, st, off, size, stride): self.a = (st, off, tuple(size), tuple(stride), False, collections.OrderedDict())
    def __reduce__(self): return (_rebuild_tensor_v2, self.a)
class P(pickle.Pickler):
    def persistent_id(self, o):
        if isinstance(o, Storage): return ("storage", getattr(torch, o.kind), o.key, "cpu", o.numel)
        return None

def dumps(obj):
    b = io.BytesIO(); P(b, protocol=2).dump(obj); return b.getvalue()

def write(path, pkl, storages, byteorder=b"little", deflate=()):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", pkl)
        z.writestr("archive/byteorder", byteorder)
        for k, raw in storages.items():
            z.writestr(f"archive/data/{k}", raw, compress_type=zipfile.ZIP_DEFLATED if k in deflate else zipfile.ZIP_STORED)
        z.writestr("archive/version", b"3\n")

class Evil:
    def __init__(self, cmd): self.cmd = cmd
    def __reduce__(self): return (os.system, (self.cmd,))

def make(d):
    a = np.arange(12, dtype=np.float32) * 0.5 - 2
    h = (np.arange(6, dtype=np.float32) / 4).astype(np.float16)
    bf = (np.array([1.0, -2.5, 3.25, 0.125], dtype=np.float32).view(np.uint32) >> 16).astype(np.uint16)
    sa, sh, sb = Storage("FloatStorage", "0", 12), Storage("HalfStorage", "1", 6), Storage("BFloat16Storage", "2", 4)
    sd = collections.OrderedDict()
    sd["w"] = T(sa, 0, [3, 4], [4, 1])
    sd["wt"] = T(sa, 1, [3, 2], [1, 4])   # strided view: a[1 + i + 4j]
    sd["h"] = T(sh, 0, [2, 3], [3, 1])
    sd["b"] = T(sb, 0, [4], [1])
    stor = {"0": a.tobytes(), "1": h.tobytes(), "2": bf.tobytes()}
    write(f"{d}/valid.pth", dumps(sd), stor)
    exp = {"w": a.reshape(3, 4).tolist(), "wt": [[float(a[1 + i + 4 * j]) for j in range(2)] for i in range(3)],
           "h": h.astype(np.float32).reshape(2, 3).tolist(), "b": [1.0, -2.5, 3.25, 0.125]}
    json.dump(exp, open(f"{d}/valid.json", "w"))
    write(f"{d}/wrapped.pth", dumps({"state_dict": sd, "epoch": 3}), stor)
    write(f"{d}/system.pth", dumps(collections.OrderedDict(x=Evil(f"touch {d}/canary"))), stor)
    write(f"{d}/function.pth", dumps(collections.OrderedDict(x=json.dumps)), stor)
    write(f"{d}/class.pth", dumps(collections.OrderedDict(x=datetime.date(2020, 1, 1))), stor)
    past = collections.OrderedDict(w=T(sa, 10, [2, 4], [4, 1]))
    write(f"{d}/past.pth", dumps(past), stor)
    write(f"{d}/missing.pth", dumps(collections.OrderedDict(w=T(Storage("FloatStorage", "9", 12), 0, [12], [1]))), stor)
    write(f"{d}/deflate.pth", dumps(sd), stor, deflate=("0",))
    write(f"{d}/bigendian.pth", dumps(sd), stor, byteorder=b"big")
    raw = open(f"{d}/valid.pth", "rb").read()
    open(f"{d}/truncated.pth", "wb").write(raw[: len(raw) // 2])
    bad = bytearray(raw); i = raw.find(a.tobytes()); bad[i + 5] ^= 0xFF
    open(f"{d}/crc.pth", "wb").write(bytes(bad))

if __name__ == "__main__":
    reference(sys.argv[2]) if sys.argv[1] == "reference" else make(sys.argv[2])
