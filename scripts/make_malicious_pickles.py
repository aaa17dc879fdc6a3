"""Writes real malicious / abusive pickles, each inside a torch.save-style zip, to
test/fixtures/io/malicious/, plus manifest.json: {file: {"error": regex the FormatError must match,
"marker": file that would exist if the payload ran}}. The payloads are only ever *written* here
(pickle.dumps / hand-assembled opcodes), never loaded.

Run with Debian's python (torch 1.13):  /usr/bin/python3 scripts/make_malicious_pickles.py
Deterministic: fixed zip timestamps, no randomness.
"""
import builtins
import io
import json
import os
import pickle
import struct
import subprocess
import zipfile

import torch

OUT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'io', 'malicious'))
ZIP_DATE = (1980, 1, 1, 0, 0, 0)
manifest = {}


def archive(name, pkl, error, marker=None, extra=None):
    """A zip laid out like torch.save's (archive/data.pkl, archive/data/0, archive/version)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, 'w', zipfile.ZIP_STORED) as z:
        def add(n, data):
            info = zipfile.ZipInfo(n, ZIP_DATE)
            z.writestr(info, data)
        add('archive/data.pkl', pkl)
        add('archive/data/0', struct.pack('<4f', 1, 2, 3, 4))
        add('archive/version', b'3\n')
        for k, v in (extra or {}).items():
            add(k, v)
    with open(os.path.join(OUT, name), 'wb') as f:
        f.write(buf.getvalue())
    manifest[name] = {'error': error, 'marker': marker or ''}


class Reduce:
    """An object whose __reduce__ returns (callable, args): what every pickle RCE uses."""
    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return (self.fn, self.args)

    def __call__(self, *args):  # callable, so the pickler accepts it as the function of an outer REDUCE
        raise RuntimeError('never called')


def with_tensor(obj, proto=2):
    """A state-dict-like OrderedDict holding a real tensor entry and the payload."""
    buf = io.BytesIO()
    p = pickle.Pickler(buf, protocol=proto)
    p.persistent_id = lambda o: ('storage', torch.FloatStorage, '0', 'cpu', 4) if isinstance(o, FakeStorage) else None
    import collections
    p.dump(collections.OrderedDict(weight=FakeTensor(), evil=obj))
    return buf.getvalue()


class FakeStorage:
    """Pickled as the persistent id of storage '0' (as torch.save does for real storages)."""


class FakeTensor:
    def __reduce__(self):
        import collections
        return (torch._utils._rebuild_tensor_v2, (FakeStorage(), 0, (4,), (1,), False, collections.OrderedDict()))


def marker(tag):
    return '/tmp/ptq_node_pwned_' + tag


# 1. The classic payloads, through __reduce__, at several protocols.
m = marker('exec')
archive('builtins_exec.pth', with_tensor(Reduce(builtins.exec, "open(%r, 'w')" % m), proto=4), r"forbidden global 'builtins\.exec'", m)
m = marker('popen')
archive('subprocess_popen.pth', with_tensor(Reduce(subprocess.Popen, ['touch', m]), proto=4), r"forbidden global 'subprocess\.Popen'", m)
m = marker('system3')
archive('posix_system_proto3.pth', with_tensor(Reduce(os.system, 'touch ' + m), proto=3), r"forbidden global 'posix\.system'", m)
m = marker('getattr')
# __reduce__ returning a callable that itself is produced by a nested REDUCE: getattr(builtins-ish, 'system')
archive('nested_reduce_getattr.pth', with_tensor(Reduce(Reduce(getattr, Reduce(__import__, 'os'), 'system'), 'touch ' + m), proto=2),
        r"forbidden global '(builtins|__builtin__)\.getattr'", m)
# A payload hidden inside the arguments of an allowed function: the allowed REDUCE never runs it.
m = marker('inner')
archive('payload_in_tensor_args.pth', with_tensor([Reduce(os.system, 'touch ' + m)], proto=2), r"forbidden global 'posix\.system'", m)

# 2. Hand-assembled opcode tricks.
def ops(*parts):
    return b''.join(p if isinstance(p, bytes) else bytes([p]) for p in parts)

def su(s):  # SHORT_BINUNICODE
    b = s.encode()
    return ops(0x8c, bytes([len(b)]), b)

P4 = ops(0x80, 4)
m = marker('stackglobal_memo')
# STACK_GLOBAL whose module/name strings come from the memo (MEMOIZE / BINGET), not literals.
archive('stack_global_via_memo.pth', ops(P4, su('os'), 0x94, su('system'), 0x94, 0x30, 0x30, 0x68, 0, 0x68, 1, 0x93,
                                          su('touch ' + m), 0x85, 0x52, 0x2e), r"forbidden global 'os\.system'", m)
# STACK_GLOBAL after allowed names were pushed (a swap attempt: allowed module, forbidden name).
archive('stack_global_mixed.pth', ops(P4, su('collections'), su('OrderedDict'), 0x30, su('system'), 0x93, 0x2e),
        r"forbidden global 'collections\.system'|STACK_GLOBAL")
# GLOBAL with a newline-smuggled name and with a dotted name.
archive('global_dotted.pth', ops(0x80, 2, b'ctorch._utils\n_rebuild_tensor_v2.__globals__\n', 0x2e), r"forbidden global")
archive('global_nested_module.pth', ops(0x80, 2, b'ccollections\nOrderedDict.__init__.__globals__\n', 0x2e), r"forbidden global")
# INST and OBJ (protocol 0/1 object construction), with forbidden classes.
m = marker('inst')
archive('inst_os_system.pth', ops(0x28, b'S\'touch ' + m.encode() + b'\'\n', b'ios\nsystem\n', 0x2e), r"INST.*not allowed|opcode not allowed", m)
m = marker('obj')
archive('obj_os_system.pth', ops(0x80, 1, 0x28, b'cos\nsystem\n', b'S\'touch ' + m.encode() + b'\'\n', 0x6f, 0x2e), r"forbidden global 'os\.system'|OBJ", m)
# NEWOBJ on an allowed-looking class.
archive('newobj.pth', ops(0x80, 2, b'ccollections\nOrderedDict\n', 0x29, 0x81, 0x2e), r"NEWOBJ|not allowed")
# BUILD used to set state on an arbitrary object (__setstate__ abuse).
archive('build_setstate.pth', ops(0x80, 2, 0x5d, 0x7d, 0x62, 0x2e), r"BUILD")
# persistent_load abuse: a persistent id that is not a storage, a storage type that is a forbidden
# global, a key escaping the data folder, and the text PERSID opcode.
archive('persid_not_storage.pth', ops(0x80, 2, 0x28, b'X\x06\x00\x00\x00module', b'X\x02\x00\x00\x00os', 0x74, 0x51, 0x2e),
        r"unsupported persistent id")
archive('persid_forbidden_type.pth', ops(0x80, 2, 0x28, b'X\x07\x00\x00\x00storage', b'cposix\nsystem\n', b'X\x01\x00\x00\x000', b'X\x03\x00\x00\x00cpu', 0x4b, 4, 0x74, 0x51, 0x2e),
        r"forbidden global 'posix\.system'")
archive('persid_key_traversal.pth', ops(0x80, 2, 0x28, b'X\x07\x00\x00\x00storage', b'ctorch\nFloatStorage\n', b'X\x10\x00\x00\x00../../etc/passwd', b'X\x03\x00\x00\x00cpu', 0x4b, 4, 0x74, 0x51, 0x2e),
        r"invalid storage key")
archive('persid_text_opcode.pth', ops(0x80, 2, b'Pstorage\n', 0x2e), r"PERSID|not allowed")
# Memo abuse: reading unset slots, huge slot numbers, and a memoized forbidden global reused.
archive('memo_unset.pth', ops(0x80, 2, 0x6a, b'\xff\xff\xff\x7f', 0x2e), r"memo key")
archive('memo_forbidden_reuse.pth', ops(0x80, 2, b'cos\nsystem\n', 0x71, 0, 0x30, 0x68, 0, 0x2e), r"forbidden global 'os\.system'")
# Deep nesting: 20k nested lists (no recursion in our reader), 20k MARKs.
archive('deep_lists.pth', ops(0x80, 2, b'\x5d' * 20000, b'\x61' * 19999, 0x2e), r"list|not a state dict")
archive('deep_marks.pth', ops(0x80, 2, b'\x28' * 20000, 0x2e), r"nesting deeper")
# Protocol 5 out-of-band buffers and extension registry codes.
archive('next_buffer.pth', ops(0x80, 5, 0x97, 0x2e), r"NEXT_BUFFER|not allowed")
archive('ext1.pth', ops(0x80, 2, 0x82, 1, 0x2e), r"EXT1|not allowed")

with open(os.path.join(OUT, 'manifest.json'), 'w') as f:
    json.dump(manifest, f, indent=1, sort_keys=True)
print('wrote', len(manifest), 'files to', OUT)
