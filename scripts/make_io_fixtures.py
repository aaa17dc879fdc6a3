#!/usr/bin/python3
"""Write the small, committed fixtures for the lib/io readers (test/fixtures/io/).

Run with Debian's python (torch 1.13 + numpy):  /usr/bin/python3 scripts/make_io_fixtures.py
Everything is deterministic (fixed seeds, zero zip/gzip timestamps), so re-running gives the same bytes.
The malicious pickles are only ever *written* here, never loaded.
"""
import collections
import gzip
import io
import json
import os
import pickle
import struct
import zipfile

import numpy as np
import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'io')
OUT = os.path.normpath(OUT)
ZIP_DATE = (1980, 1, 1, 0, 0, 0)

DTYPE_NAMES = {
    torch.float32: 'float32', torch.float64: 'float64', torch.float16: 'float16', torch.bfloat16: 'bfloat16',
    torch.int64: 'int64', torch.int32: 'int32', torch.int16: 'int16', torch.int8: 'int8', torch.uint8: 'uint8',
    torch.bool: 'bool',
}
BIT_VIEW = {torch.float16: torch.int16, torch.bfloat16: torch.int16}


def describe(t):
    """JSON description of a tensor: dtype, shape, flattened values (int64 as strings, 16-bit floats also as bits)."""
    c = t.detach().contiguous()
    d = {'dtype': DTYPE_NAMES[c.dtype], 'shape': list(c.shape)}
    if c.dtype == torch.int64:
        d['values'] = [str(v) for v in c.flatten().tolist()]
    elif c.dtype == torch.bool:
        d['values'] = [int(v) for v in c.flatten().tolist()]
    elif c.dtype in BIT_VIEW:
        d['values'] = c.float().flatten().tolist()
        d['bits'] = [v & 0xFFFF for v in c.view(BIT_VIEW[c.dtype]).flatten().tolist()]
    else:
        d['values'] = c.flatten().tolist()
    return d


def path(name):
    return os.path.join(OUT, name)


def rewrite_zip(src, dst, transform=lambda name, data: (name, data), extra=()):
    """Copy a zip archive entry by entry through transform(name, bytes) -> (name, bytes), adding extra entries."""
    with zipfile.ZipFile(src) as zin:
        entries = [(i.filename, zin.read(i.filename)) for i in zin.infolist()]
    with zipfile.ZipFile(dst, 'w', zipfile.ZIP_STORED) as zout:
        for name, data in entries:
            name, data = transform(name, data)
            zout.writestr(zipfile.ZipInfo(name, ZIP_DATE), data)
        for name, data in extra:
            zout.writestr(zipfile.ZipInfo(name, ZIP_DATE), data)


def patch_pickle(name, old, new):
    """Replace bytes inside <archive>/data.pkl of an existing fixture, in place."""
    tmp = path(name) + '.tmp'
    os.replace(path(name), tmp)
    rewrite_zip(tmp, path(name), lambda n, d: (n, d.replace(old, new) if n.endswith('/data.pkl') else d))
    os.remove(tmp)


def save_state(name, sd, **kw):
    torch.save(sd, path(name), **kw)
    return {'keys': list(sd.keys()), 'tensors': {k: describe(v) for k, v in sd.items()}}


class SubTensor(torch.Tensor):
    """A tensor subclass: torch pickles it through torch._tensor._rebuild_from_type_v2."""


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    np.random.seed(0)
    expected = {'pth': {}, 'malicious': {}, 'invalid': {}, 'safetensors': {}, 'idx': {}}

    # 1. A tiny model: float32 weights plus BatchNorm running stats and an int64 num_batches_tracked.
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2), torch.nn.Flatten(),
                                torch.nn.Linear(8, 3))
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(4, 1, 4, 4))
    sd = model.state_dict()
    expected['pth']['tiny_model.pth'] = save_state('tiny_model.pth', sd)
    # The same dict with pickle protocol 4 (FRAME, MEMOIZE, SHORT_BINUNICODE, STACK_GLOBAL).
    expected['pth']['tiny_model_proto4.pth'] = save_state('tiny_model_proto4.pth', sd, pickle_protocol=4)
    # keep_vars=True keeps nn.Parameter objects -> torch._utils._rebuild_parameter.
    expected['pth']['params_keepvars.pth'] = save_state(
        'params_keepvars.pth', collections.OrderedDict(
            (k, v) for k, v in model.state_dict(keep_vars=True).items() if k.startswith('3.')))

    # 2. Views: one shared storage seen through offsets, transposes, strided slices, expand (stride 0).
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6) * 0.5 - 3
    views = collections.OrderedDict()
    views['base'] = base
    views['row1'] = base[1]                 # offset 6, contiguous
    views['col2'] = base[:, 2]              # offset 2, stride 6
    views['block'] = base[1:3, 1:4]         # offset 7, strides (6, 1)
    views['transposed'] = base.t()          # strides (1, 6)
    views['stepped'] = base[::2, ::3]       # strides (12, 3)
    views['expanded'] = torch.tensor([1.5, -2.0]).expand(3, 2)  # strides (0, 1), storage of 2
    views['scalar'] = torch.tensor(3.25)    # shape []
    views['empty'] = torch.empty(0, 3)
    views['permuted3d'] = torch.arange(24, dtype=torch.int32).reshape(2, 3, 4).permute(2, 0, 1)
    expected['pth']['views.pth'] = save_state('views.pth', views)

    # 3. Other dtypes (each with its own storage).
    dt = collections.OrderedDict()
    dt['f16'] = torch.tensor([1.0, -2.5, 6.1035156e-05, 65504.0, 5.9604645e-08, -0.0], dtype=torch.float16)
    dt['bf16'] = torch.tensor([[1.0, -3.140625], [1e30, -1e-30]], dtype=torch.bfloat16)
    dt['f64'] = torch.tensor([[0.1, -1e300], [2.5e-310, 3.0]], dtype=torch.float64)
    dt['i32'] = torch.tensor([0, -1, 2147483647, -2147483648, 12345], dtype=torch.int32)
    dt['i64'] = torch.tensor([0, -1, 2 ** 62, -(2 ** 63), 2 ** 53 + 1], dtype=torch.int64)
    dt['i16'] = torch.tensor([[-32768, 32767], [7, -7]], dtype=torch.int16)
    dt['i8'] = torch.tensor([-128, 127, 0], dtype=torch.int8)
    dt['u8'] = torch.tensor([0, 255, 128], dtype=torch.uint8)
    dt['mask'] = torch.tensor([True, False, True, True])
    dt['f16_t'] = torch.arange(6, dtype=torch.float16).reshape(2, 3).t()
    expected['pth']['dtypes.pth'] = save_state('dtypes.pth', dt)
    itemsize = {k: v.element_size() for k, v in dt.items()}

    # Same tensors, but declared big-endian through a 'byteorder' record (as torch >= 2.1 writes it).
    order = list(dt.keys())  # storage keys '0', '1', ... follow first use, i.e. dict order here

    def to_big(name, data):
        parts = name.split('/')
        if len(parts) == 3 and parts[1] == 'data':
            size = itemsize[order[int(parts[2])]]
            if size > 1:
                data = np.frombuffer(data, dtype='u%d' % size).byteswap().tobytes()
        return 'dtypes_big/' + '/'.join(parts[1:]), data

    rewrite_zip(path('dtypes.pth'), path('dtypes_big.pth'), to_big, extra=[('dtypes_big/byteorder', b'big')])
    expected['pth']['dtypes_big.pth'] = expected['pth']['dtypes.pth']

    # A tensor subclass goes through torch._tensor._rebuild_from_type_v2(func, type, args, state); rewrite
    # the subclass global to plain torch._tensor.Tensor so the allowed path is exercised.
    sub = collections.OrderedDict(w=torch.tensor([0.5, 1.5]).as_subclass(SubTensor))
    torch.save(sub, path('from_type.pth'))
    patch_pickle('from_type.pth', b'c__main__\nSubTensor\n', b'ctorch._tensor\nTensor\n')
    expected['pth']['from_type.pth'] = {'keys': ['w'], 'tensors': {'w': describe(torch.tensor([0.5, 1.5]))}}

    # 4. Malicious pickles. Each would create a marker file in /tmp if it were ever executed.
    class Evil:
        def __init__(self, fn, arg):
            self.fn, self.arg = fn, arg

        def __reduce__(self):
            return (self.fn, (self.arg,))

    def malicious(name, fn, arg, glob, marker, proto=2, replace=None):
        obj = collections.OrderedDict(weight=torch.ones(2), evil=Evil(fn, arg))
        torch.save(obj, path(name), pickle_protocol=proto)
        if replace is not None:
            patch_pickle(name, *replace)
        expected['malicious'][name] = {'global': glob, 'marker': marker}

    m = '/tmp/ptq_node_pwned_posix'
    malicious('malicious_posix_system.pth', os.system, 'touch ' + m, 'posix.system', m)
    m = '/tmp/ptq_node_pwned_os'
    # os.system pickles as posix.system on Linux; spell the global as 'os system' by hand.
    malicious('malicious_os_system.pth', os.system, 'touch ' + m, 'os.system', m,
              replace=(b'cposix\nsystem\n', b'cos\nsystem\n'))
    m = '/tmp/ptq_node_pwned_eval'
    code = "__import__('os').system('touch %s')" % m
    # Protocol 4: STACK_GLOBAL 'builtins' 'eval'.
    malicious('malicious_builtins_eval.pth', eval, code, 'builtins.eval', m, proto=4)
    m = '/tmp/ptq_node_pwned_eval2'
    code = "__import__('os').system('touch %s')" % m
    # Protocol 2 maps builtins to the Python 2 name: GLOBAL '__builtin__ eval'.
    malicious('malicious_builtin_eval.pth', eval, code, '__builtin__.eval', m, proto=2)

    # 5. Structurally invalid archives built with a hand-made persistent id.
    class FakeStorage:
        pass

    class FakeTensor:
        def __init__(self, offset, size, stride):
            self.args = (FakeStorage(), offset, size, stride, False, collections.OrderedDict())

        def __reduce__(self):
            return (torch._utils._rebuild_tensor_v2, self.args)

    def crafted(name, key, numel, nbytes, offset, size, stride, error):
        buf = io.BytesIO()
        p = pickle.Pickler(buf, protocol=2)
        p.persistent_id = lambda o: ('storage', torch.FloatStorage, key, 'cpu', numel) \
            if isinstance(o, FakeStorage) else None
        p.dump(collections.OrderedDict(w=FakeTensor(offset, size, stride)))
        stem = name[:-4]
        with zipfile.ZipFile(path(name), 'w', zipfile.ZIP_STORED) as z:
            z.writestr(zipfile.ZipInfo(stem + '/data.pkl', ZIP_DATE), buf.getvalue())
            z.writestr(zipfile.ZipInfo(stem + '/data/0', ZIP_DATE), bytes(range(nbytes)))
            z.writestr(zipfile.ZipInfo(stem + '/version', ZIP_DATE), b'3\n')
        expected['invalid'][name] = error

    crafted('bad_key_traversal.pth', '../data/0', 2, 8, 0, (2,), (1,), 'storage key')
    crafted('bad_key_missing.pth', '7', 2, 8, 0, (2,), (1,), 'data/7')
    crafted('too_large_view.pth', '0', 2, 8, 0, (100,), (1,), 'out of range')
    crafted('bad_offset_view.pth', '0', 2, 8, 1, (2,), (1,), 'out of range')
    crafted('numel_mismatch.pth', '0', 100, 8, 0, (2,), (1,), 'bytes')

    # The pre-1.6 (non-zip) format is not supported and must be rejected with a clear message.
    # (Not byte-reproducible: the legacy format records storage keys derived from object addresses.)
    torch.save({'x': torch.ones(2)}, path('legacy_format.pth'), _use_new_zipfile_serialization=False)
    expected['invalid']['legacy_format.pth'] = 'legacy'

    # 6. safetensors, written by hand following the spec (the python package is not installed).
    st = {
        'weight': np.arange(6, dtype=np.float32).reshape(2, 3) / 4 - 0.5,
        'bias': np.array([0.1, -2.0, 1e-300], dtype=np.float64),
        'half': np.array([1.0, -2.5, 6.1035156e-05, 65504.0], dtype=np.float16),
        'bf': torch.tensor([[1.0, -3.140625], [1e30, 0.0]], dtype=torch.bfloat16),
        'ids': np.array([-(2 ** 62), 2 ** 53 + 1, 7], dtype=np.int64),
        'i32': np.array([-5, 2147483647], dtype=np.int32),
        'i16': np.array([-32768, 1, 2], dtype=np.int16),
        'i8': np.array([-1, 100], dtype=np.int8),
        'u8': np.array([[0, 1], [254, 255]], dtype=np.uint8),
        'mask': np.array([True, False, True]),
        'scalar': np.array(2.75, dtype=np.float32),
        'empty': np.zeros((0, 4), dtype=np.float32),
    }
    st_names = {np.dtype('float32'): 'F32', np.dtype('float64'): 'F64', np.dtype('float16'): 'F16',
                np.dtype('int64'): 'I64', np.dtype('int32'): 'I32', np.dtype('int16'): 'I16',
                np.dtype('int8'): 'I8', np.dtype('uint8'): 'U8', np.dtype('bool'): 'BOOL'}

    def st_entry(v):
        if isinstance(v, torch.Tensor):  # bfloat16: numpy has no such dtype; use the raw bits
            return 'BF16', list(v.shape), v.contiguous().view(torch.int16).numpy().astype('<i2').tobytes(), 2
        v = np.array(v, order='C')  # not ascontiguousarray: that turns 0-d arrays into 1-d
        return st_names[v.dtype], list(v.shape), v.astype(v.dtype.newbyteorder('<')).tobytes(), v.dtype.itemsize

    # Same order as the reference writer: larger alignment first, then by name.
    items = sorted(st.items(), key=lambda kv: (-st_entry(kv[1])[3], kv[0]))
    metadata = {'format': 'pt', 'author': 'ptq-node fixture Zo\u00eb', 'note': 'quote " and \\ backslash'}
    header = {'__metadata__': metadata}
    blobs = []
    offset = 0
    for name, v in items:
        dtype, shape, data, _ = st_entry(v)
        header[name] = {'dtype': dtype, 'shape': shape, 'data_offsets': [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    hbytes = json.dumps(header, separators=(',', ':'), ensure_ascii=False).encode('utf-8')
    hbytes += b' ' * ((8 - len(hbytes) % 8) % 8)
    with open(path('small.safetensors'), 'wb') as f:
        f.write(struct.pack('<Q', len(hbytes)) + hbytes + b''.join(blobs))
    expected['safetensors']['small.safetensors'] = {
        'keys': [n for n, _ in items],
        'metadata': metadata,
        'tensors': {n: describe(v if isinstance(v, torch.Tensor) else torch.from_numpy(np.array(v)))
                    for n, v in items},
    }

    # 7. IDX files: a 5-image 'train' split gzipped and a 3-image 't10k' split raw, plus one file per type.
    def idx_bytes(arr, code):
        arr = np.ascontiguousarray(arr)
        head = bytes([0, 0, code, arr.ndim]) + b''.join(struct.pack('>I', d) for d in arr.shape)
        return head + arr.astype(arr.dtype.newbyteorder('>')).tobytes()

    fm = os.path.join(OUT, 'fmnist')
    os.makedirs(fm, exist_ok=True)
    rng = np.random.RandomState(1)
    splits = {}
    for split, prefix, count, gz in (('train', 'train', 5, True), ('test', 't10k', 3, False)):
        images = rng.randint(0, 256, size=(count, 28, 28)).astype(np.uint8)
        labels = rng.randint(0, 10, size=(count,)).astype(np.uint8)
        for kind, arr, code in (('images-idx3-ubyte', images, 0x08), ('labels-idx1-ubyte', labels, 0x08)):
            data = idx_bytes(arr, code)
            name = '%s-%s' % (prefix, kind)
            if gz:
                with open(os.path.join(fm, name + '.gz'), 'wb') as f:
                    f.write(gzip.compress(data, mtime=0))
            else:
                with open(os.path.join(fm, name), 'wb') as f:
                    f.write(data)
        splits[split] = {'count': count, 'labels': labels.tolist(),
                         'pixel_sums': [int(s) for s in images.reshape(count, -1).sum(1)],
                         'first_row': images[0, 0].tolist()}
    expected['idx']['fmnist'] = splits

    typed = {
        'int8.idx': (np.array([[-128, 0, 127]], dtype=np.int8), 0x09),
        'int16.idx': (np.array([[-32768, 1, 2], [3, 4, 32767]], dtype=np.int16), 0x0B),
        'int32.idx': (np.array([-2147483648, 0, 2147483647, 65536], dtype=np.int32), 0x0C),
        'float32.idx': (np.array([[[1.5], [-0.25]]], dtype=np.float32), 0x0D),
        'float64.idx.gz': (np.array([0.1, -1e300, 5e-324], dtype=np.float64), 0x0E),
    }
    for name, (arr, code) in typed.items():
        data = idx_bytes(arr, code)
        if name.endswith('.gz'):
            data = gzip.compress(data, mtime=0)
        with open(path(name), 'wb') as f:
            f.write(data)
        expected['idx'][name] = {'dims': list(arr.shape), 'values': arr.flatten().tolist()}

    with open(path('expected.json'), 'w') as f:
        json.dump(expected, f, indent=1, sort_keys=False)
        f.write('\n')


if __name__ == '__main__':
    main()
