#!/usr/bin/env python3
"""Seeds the cargo-fuzz corpora (fuzz/corpus/<target>/, not committed) from tests/bpf/*.bpf.o and
../shared/corpus: whole objects for elf_open, their .BTF / .BTF.ext sections for the BTF targets, framed
inputs for core_reloc and datasec_fixup, and small text samples for kconfig, kallsyms and sec_def.
Stdlib only (no objcopy needed): a minimal ELF64/ELF32 section reader."""
import glob, gzip, hashlib, os, struct, sys

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
out = os.path.join(root, "fuzz", "corpus")


def sections(data):
    """{name: bytes} for an ELF file, {} if it is not one we understand."""
    if data[:4] != b"\x7fELF" or len(data) < 64:
        return {}
    is64, le = data[4] == 2, data[5] == 1
    e = "<" if le else ">"
    try:
        if is64:
            shoff, = struct.unpack_from(e + "Q", data, 0x28)
            shentsize, shnum, shstrndx = struct.unpack_from(e + "HHH", data, 0x3A)
        else:
            shoff, = struct.unpack_from(e + "I", data, 0x20)
            shentsize, shnum, shstrndx = struct.unpack_from(e + "HHH", data, 0x2E)
        hdrs = []
        for i in range(shnum):
            o = shoff + i * shentsize
            if is64:
                name, typ, _f, _a, off, size = struct.unpack_from(e + "IIQQQQ", data, o)
            else:
                name, typ, _f, _a, off, size = struct.unpack_from(e + "IIIIII", data, o)
            hdrs.append((name, typ, off, size))
        strtab = hdrs[shstrndx]
        names = data[strtab[2]:strtab[2] + strtab[3]]
        res = {}
        for name, typ, off, size in hdrs:
            n = names[name:names.index(b"\0", name)].decode("latin1")
            if typ != 8:  # not NOBITS
                res[n] = data[off:off + size]
        return res
    except (struct.error, IndexError, ValueError):
        return {}


def put(target, blob):
    d = os.path.join(out, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, hashlib.sha1(blob).hexdigest()), "wb") as f:
        f.write(blob)


def frame(*parts):
    return b"".join(struct.pack("<I", len(p)) + p for p in parts)


objs = sorted(glob.glob(os.path.join(root, "tests/bpf/*.bpf.o")))
objs += sorted(glob.glob(os.path.join(root, "../shared/corpus/**/*.elf"), recursive=True))
objs += sorted(glob.glob("/work/shared/corpus/**/*.elf", recursive=True))
# Inputs the fuzzers once found a bug with (regression seeds; each also has a test in tests/).
objs += sorted(glob.glob(os.path.join(root, "tests/bpf/hostile/fuzz-elf_open-*.bin")))
seen = set()
for path in objs:
    data = open(path, "rb").read()
    if data in seen:
        continue
    seen.add(data)
    put("elf_open", data)
    s = sections(data)
    btf, ext = s.get(".BTF"), s.get(".BTF.ext")
    if btf:
        put("btf_parse", btf)
        # datasec_fixup: the BTF, then answers (sizes/values) taken from the object's own bytes.
        put("datasec_fixup", frame(btf) + data[:256])
    if ext:
        put("btf_ext", ext)
    if btf and ext:
        for mode in (0, 1, 2, 5):  # target = itself, = vmlinux; two instruction templates
            put("core_reloc", bytes([mode]) + frame(btf, ext) + btf)

# Text parsers: real files of this machine, cut small, plus a few hand-made edge cases.
kc = ["/boot/config-" + os.uname().release, "/proc/config.gz"]
for p in kc:
    try:
        raw = open(p, "rb").read()
        text = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
        put("kconfig", text[:4096])
        put("kconfig", gzip.compress(text[:2048]))
        break
    except OSError:
        pass
put("kconfig", b'CONFIG_BOOL=y\nCONFIG_CHAR=m\nCONFIG_TRI=m\nCONFIG_U8=255\nCONFIG_S16=-3\n'
    b'CONFIG_U32=0x10\nCONFIG_S64=-9223372036854775808\nCONFIG_U64=18446744073709551615\n'
    b'CONFIG_STR1=""\nCONFIG_STR="a long string that is truncated"\n# CONFIG_X is not set\n')
try:
    with open("/proc/kallsyms", "rb") as f:
        put("kallsyms", f.read(8192).rsplit(b"\n", 1)[0] + b"\n")
except OSError:
    pass
put("kallsyms", b"ffffffff81000000 T _stext\nffffffff81000010 t foo.llvm.1234\n0000000000001000 D bar [mod]\n")
for name in ["kprobe/do_sys_open", "kprobe.multi/x", "xdp.frags", "tc/ingress", "lsm.s/file_open",
             "uprobe.multi.s/x", "?struct_ops/x", "cgroup/connect4", "socket", "fentry/", "raw_tp.w/x"]:
    put("sec_def", name.encode())
print("seeded", {t: len(os.listdir(os.path.join(out, t))) for t in sorted(os.listdir(out))})
