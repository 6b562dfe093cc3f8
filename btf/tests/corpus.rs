//! Every corpus `.BTF`/`.BTF.ext` (both byte orders) parses and decodes completely; big-endian
//! objects read the same as their little-endian twins; parse → model → encode → parse round-trips
//! (byte-identical where the input's layout is canonical), also for vmlinux.

mod common;

use bpfload_btf::ext::ExtRecord;
use bpfload_btf::{Btf, BtfExt, BtfModel, CoreRelo, CoreReloKind, FuncInfo, Kind, LineInfo};

/// Decodes everything reachable, so lazy decoding errors surface.
fn decode_all(what: &str, btf: &Btf<'_>) {
    for id in btf.ids() {
        let t = btf
            .type_by_id(id)
            .unwrap_or_else(|e| panic!("{what} [{id}]: {e}"));
        btf.name(id)
            .unwrap_or_else(|e| panic!("{what} [{id}] name: {e}"));
        if let Some(c) = t.as_composite() {
            for m in c.members() {
                btf.str_at(m.name_off).unwrap();
            }
        }
        if let Some(e) = t.as_enum() {
            for v in e.values() {
                btf.str_at(v.name_off).unwrap();
            }
        }
    }
}

/// Raw layout is what `BtfModel::to_bytes` writes: 24-byte header, types then strings.
fn canonical(btf: &Btf<'_>) -> bool {
    let h = btf.header();
    h.hdr_len == 24
        && h.type_off == 0
        && h.str_off == h.type_len
        && 24 + h.type_len as usize + h.str_len as usize == btf.data().len()
}

/// Returns whether the encoding was compared byte for byte with the input.
fn roundtrip(what: &str, btf: &Btf<'_>) -> bool {
    let model = BtfModel::from_btf(btf).unwrap();
    let bytes = model.to_bytes().unwrap();
    let again = Btf::parse(&bytes).unwrap_or_else(|e| panic!("{what}: re-parse: {e}"));
    assert_eq!(again.len(), btf.len(), "{what}");
    let model2 = BtfModel::from_btf(&again).unwrap();
    assert!(model == model2, "{what}: model changed across encode/parse");
    if btf.endian() == bpfload_btf::Endian::NATIVE && canonical(btf) {
        assert!(
            bytes == btf.data(),
            "{what}: encoding differs from the input bytes"
        );
        return true;
    }
    false
}

fn ext_records<R: ExtRecord + std::fmt::Debug>(
    info: &bpfload_btf::ext::ExtInfo<'_, R>,
) -> Vec<(u32, Vec<R>)> {
    info.sections()
        .map(|s| (s.sec_name_off, s.records().collect()))
        .collect()
}

fn check_ext(what: &str, btf: &Btf<'_>, ext: &BtfExt<'_>) {
    for s in ext.func_info.sections() {
        let sec = btf.str_at(s.sec_name_off).unwrap();
        assert!(!sec.is_empty(), "{what}");
        for r in s.records() {
            assert_eq!(r.insn_off % 8, 0, "{what} func_info {sec}");
            assert_eq!(btf.kind(r.type_id).unwrap(), Kind::Func, "{what} {sec}");
        }
    }
    for s in ext.line_info.sections() {
        btf.str_at(s.sec_name_off).unwrap();
        for r in s.records() {
            assert_eq!(r.insn_off % 8, 0, "{what} line_info");
            btf.str_at(r.file_name_off).unwrap();
            btf.str_at(r.line_off).unwrap();
        }
    }
    for s in ext.core_relos.sections() {
        btf.str_at(s.sec_name_off).unwrap();
        for r in s.records() {
            assert_eq!(r.insn_off % 8, 0, "{what} core_relo");
            assert!(CoreReloKind::from_u32(r.kind).is_some(), "{what}: {r:?}");
            let spec = btf.str_at(r.access_str_off).unwrap();
            assert!(
                spec.split(':').all(|p| p.parse::<u32>().is_ok()),
                "{what}: access spec {spec:?}"
            );
            assert!(r.type_id < btf.len(), "{what}: {r:?}");
        }
    }
}

#[test]
fn corpus_btf_and_ext_parse_decode_and_roundtrip() {
    let Some(objs) = common::corpus_btf() else {
        common::skip("corpus BTF", "corpus not found");
        return;
    };
    assert!(objs.len() >= 40, "only {} objects with .BTF", objs.len());
    let (mut with_ext, mut with_core, mut identical) = (0, 0, 0);
    for (path, btf_bytes, ext_bytes) in &objs {
        let what = path.display().to_string();
        let btf = Btf::parse(btf_bytes).unwrap_or_else(|e| panic!("{what}: {e}"));
        decode_all(&what, &btf);
        identical += roundtrip(&what, &btf) as u32;
        if let Some(ext_bytes) = ext_bytes {
            let ext = BtfExt::parse(ext_bytes).unwrap_or_else(|e| panic!("{what} .BTF.ext: {e}"));
            check_ext(&what, &btf, &ext);
            with_ext += 1;
            if !ext.core_relos.is_empty() {
                with_core += 1;
            }
        }
    }
    assert!(
        with_ext >= 40 && with_core >= 4,
        "{with_ext} with ext, {with_core} with CO-RE"
    );
    assert!(
        identical >= 20,
        "only {identical} byte-identical round trips"
    );
}

#[test]
fn big_endian_objects_read_like_their_little_endian_twins() {
    let Some(objs) = common::corpus_btf() else {
        common::skip("corpus BE/LE", "corpus not found");
        return;
    };
    let mut pairs = 0;
    for (path, be_btf, be_ext) in &objs {
        let name = path.to_string_lossy();
        let Some(stem) = name.strip_suffix("-eb.elf") else {
            continue;
        };
        let Some((_, le_btf, le_ext)) = objs
            .iter()
            .find(|(p, _, _)| p.to_string_lossy() == format!("{stem}-el.elf"))
        else {
            continue;
        };
        let be = Btf::parse(be_btf).unwrap();
        let le = Btf::parse(le_btf).unwrap();
        assert_eq!(be.endian(), bpfload_btf::Endian::Big, "{name}");
        assert_eq!(le.endian(), bpfload_btf::Endian::Little, "{name}");
        let (mb, ml) = (
            BtfModel::from_btf(&be).unwrap(),
            BtfModel::from_btf(&le).unwrap(),
        );
        assert!(mb == ml, "{name}: BE and LE BTF differ");
        if let (Some(be_ext), Some(le_ext)) = (be_ext, le_ext) {
            let (be, le) = (
                BtfExt::parse(be_ext).unwrap(),
                BtfExt::parse(le_ext).unwrap(),
            );
            assert_eq!(
                ext_records::<FuncInfo>(&be.func_info),
                ext_records(&le.func_info),
                "{name}"
            );
            assert_eq!(
                ext_records::<LineInfo>(&be.line_info),
                ext_records(&le.line_info),
                "{name}"
            );
            assert_eq!(
                ext_records::<CoreRelo>(&be.core_relos),
                ext_records(&le.core_relos),
                "{name}"
            );
        }
        pairs += 1;
    }
    assert!(pairs >= 20, "only {pairs} BE/LE pairs");
}

#[test]
fn vmlinux_roundtrips_byte_identical() {
    let Ok(bytes) = std::fs::read(bpfload_btf::kernel::VMLINUX_PATH) else {
        common::skip("vmlinux round trip", "no vmlinux BTF");
        return;
    };
    let btf = Btf::parse(&bytes).unwrap();
    decode_all("vmlinux", &btf);
    assert!(
        roundtrip("vmlinux", &btf),
        "vmlinux layout is not canonical?"
    );
}
