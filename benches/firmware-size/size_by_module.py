#!/usr/bin/env python3
"""Groups the .text symbols of firmware-size images by module (llvm-nm --size-sort -S -C).

Usage: size_by_module.py IMAGE [OTHER_IMAGE]  (columns: bytes of .text per group in each image)
"""
import re,collections,subprocess,sys
def groups(path):
    out=subprocess.run(['llvm-nm','--size-sort','-S','-C',path],capture_output=True,text=True).stdout
    g=collections.Counter()
    for line in out.splitlines():
        parts=line.split(None,3)
        if len(parts)<4 or parts[2] not in 'tT': continue
        size=int(parts[1],16); name=parts[3]
        m=re.search(r'tandem_core::conn::([a-z_]+)::',name)
        if name=='_start': k='_start (the loop, with what LTO inlined into it)'
        elif m: k='tandem_core::conn::'+m.group(1)
        elif 'tandem_core::frame' in name: k='tandem_core::frame'
        elif 'tandem_core::conn::Connection' in name: k='tandem_core::conn (mod.rs)'
        elif 'tandem_core::serial' in name or 'cobs::' in name or 'crc::' in name: k='serial framing (cobs, crc)'
        elif 'tandem_core::config' in name: k='tandem_core::config'
        elif 'tandem_core' in name: k='tandem_core::'+name.split('::')[1]
        elif 'sha2' in name: k='sha2 (request digests)'
        elif 'compiler_builtins' in name or '__aeabi' in name or 'memcmp' in name or '__udiv' in name: k='compiler_builtins (memcpy, memmove, memclr, …)'
        elif name.startswith('core::'): k='core'
        else: k='other'
        g[k]+=size
    return g
a=groups(sys.argv[1]); b=groups(sys.argv[2]) if len(sys.argv)>2 else collections.Counter()
keys=sorted(set(a)|set(b), key=lambda k:-(a[k]))
print(f"{'group':55s} {sys.argv[1].split('/')[-1]:>10s} {sys.argv[2].split('/')[-1] if len(sys.argv)>2 else '':>10s}")
for k in keys: print(f"{k:55s} {a[k]:10d} {b[k]:10d}")
print(f"{'total':55s} {sum(a.values()):10d} {sum(b.values()):10d}")
