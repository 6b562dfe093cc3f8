//! The BTF blobs of libbpf's BTF probes (`features.c`), built with the btf crate's encoder.
//! Type layouts match libbpf's hand-encoded arrays type for type.

use bpfload_btf::raw::INT_SIGNED;
use bpfload_btf::{BtfModel, FuncLinkage, VarLinkage};

type Blob = Result<Vec<u8>, String>;

fn encode(m: &BtfModel) -> Blob {
    m.to_bytes().map_err(|e| e.to_string())
}

/// `int` (FEAT_BTF, FEAT_MODULE_BTF).
pub(crate) fn int() -> Blob {
    let mut m = BtfModel::new();
    m.add_int("int", 4, INT_SIGNED);
    encode(&m)
}

/// `int; void x(int a)` as FUNC_PROTO + FUNC, static or global linkage.
pub(crate) fn func(global: bool) -> Blob {
    let mut m = BtfModel::new();
    let int = m.add_int("int", 4, INT_SIGNED);
    let proto = m.add_func_proto(0, &[("a", int)]);
    let linkage = if global {
        FuncLinkage::Global
    } else {
        FuncLinkage::Static
    };
    m.add_func("x", proto, linkage);
    encode(&m)
}

/// `static int x;` in a DATASEC called `name` (".data" or "?.data").
pub(crate) fn datasec(name: &str) -> Blob {
    let mut m = BtfModel::new();
    let int = m.add_int("", 4, INT_SIGNED);
    let var = m.add_var("x", int, VarLinkage::Static);
    m.add_datasec(name, 4, &[(var, 0, 4)]);
    encode(&m)
}

/// `float` (size 4).
pub(crate) fn float() -> Blob {
    let mut m = BtfModel::new();
    m.add_float("float", 4);
    encode(&m)
}

/// A DECL_TAG "tag" on a VAR.
pub(crate) fn decl_tag() -> Blob {
    let mut m = BtfModel::new();
    let int = m.add_int("", 4, INT_SIGNED);
    let var = m.add_var("tag", int, VarLinkage::Static);
    m.add_decl_tag("tag", var, -1);
    encode(&m)
}

/// PTR -> TYPE_TAG "tag" -> int.
pub(crate) fn type_tag() -> Blob {
    let mut m = BtfModel::new();
    let int = m.add_int("", 4, INT_SIGNED);
    let tag = m.add_type_tag("tag", int);
    m.add_ptr(tag);
    encode(&m)
}

/// An empty 8-byte ENUM64 "enum64".
pub(crate) fn enum64() -> Blob {
    let mut m = BtfModel::new();
    m.add_enum64("enum64", false, &[]);
    encode(&m)
}

/// Every kind of the blobs above in one blob (the combined BTF fast path).
pub(crate) fn combined() -> Blob {
    let mut m = BtfModel::new();
    let int = m.add_int("int", 4, INT_SIGNED);
    let proto = m.add_func_proto(0, &[("a", int)]);
    m.add_func("x", proto, FuncLinkage::Static);
    m.add_func("y", proto, FuncLinkage::Global);
    let v = m.add_var("v", int, VarLinkage::Static);
    m.add_datasec(".data", 4, &[(v, 0, 4)]);
    let w = m.add_var("w", int, VarLinkage::Static);
    m.add_datasec("?.data", 4, &[(w, 0, 4)]);
    m.add_float("float", 4);
    m.add_decl_tag("tag", v, -1);
    let tag = m.add_type_tag("tag", int);
    m.add_ptr(tag);
    m.add_enum64("enum64", false, &[]);
    encode(&m)
}

/// Type ids of the two FUNCs in [`arg_ctx`].
pub(crate) struct ArgCtxFuncs {
    pub main: u32,
    pub sub: u32,
}

/// `int a(void *a)` (main) and global `int b(void *b __arg_ctx)` (subprog, DECL_TAG "arg:ctx"
/// on parameter 0).
pub(crate) fn arg_ctx() -> Result<(Vec<u8>, ArgCtxFuncs), String> {
    let mut m = BtfModel::new();
    let int = m.add_int("a", 4, INT_SIGNED);
    let ptr = m.add_ptr(0);
    let main_proto = m.add_func_proto(int, &[("a", ptr)]);
    let main = m.add_func("a", main_proto, FuncLinkage::Global);
    let sub_proto = m.add_func_proto(int, &[("b", ptr)]);
    let sub = m.add_func("b", sub_proto, FuncLinkage::Global);
    m.add_decl_tag("arg:ctx", sub, 0);
    Ok((encode(&m)?, ArgCtxFuncs { main, sub }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bpfload_btf::{Btf, Kind};

    fn kinds(blob: &[u8]) -> Vec<Kind> {
        let btf = Btf::parse(blob).unwrap();
        btf.ids().map(|id| btf.kind(id).unwrap()).collect()
    }

    #[test]
    fn blobs_have_libbpfs_type_layouts() {
        use Kind::*;
        assert_eq!(kinds(&int().unwrap()), [Int]);
        assert_eq!(kinds(&func(false).unwrap()), [Int, FuncProto, Func]);
        assert_eq!(kinds(&func(true).unwrap()), [Int, FuncProto, Func]);
        assert_eq!(kinds(&datasec("?.data").unwrap()), [Int, Var, DataSec]);
        assert_eq!(kinds(&float().unwrap()), [Float]);
        assert_eq!(kinds(&decl_tag().unwrap()), [Int, Var, DeclTag]);
        assert_eq!(kinds(&type_tag().unwrap()), [Int, TypeTag, Ptr]);
        assert_eq!(kinds(&enum64().unwrap()), [Enum64]);
        assert_eq!(
            kinds(&combined().unwrap()),
            [
                Int, FuncProto, Func, Func, Var, DataSec, Var, DataSec, Float, DeclTag, TypeTag,
                Ptr, Enum64
            ]
        );
        let (b, f) = arg_ctx().unwrap();
        assert_eq!(
            kinds(&b),
            [Int, Ptr, FuncProto, Func, FuncProto, Func, DeclTag]
        );
        assert_eq!((f.main, f.sub), (4, 6));
        let btf = Btf::parse(&b).unwrap();
        assert_eq!(btf.name(7).unwrap(), "arg:ctx");
        assert_eq!(
            Btf::parse(&datasec("?.data").unwrap())
                .unwrap()
                .name(3)
                .unwrap(),
            "?.data"
        );
    }
}
