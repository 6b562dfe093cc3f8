//! [`BtfData`]: parsed BTF that owns its bytes, so it can be shared process-wide behind an `Arc`.

use std::sync::Arc;

use bytes::Bytes;

use crate::btf::{Btf, Layout};
use crate::error::BtfError;

/// BTF that owns its bytes (a `Vec`, a memory map, anything `Bytes` can hold) together with the
/// parse result, handing out [`Btf`] views without re-parsing. The name index built through any
/// view is kept here and shared by all later views, across threads.
#[derive(Debug)]
pub struct BtfData {
    bytes: Bytes,
    layout: Arc<Layout>,
    base: Option<Arc<BtfData>>,
}

impl BtfData {
    /// Parses base BTF from owned bytes.
    pub fn parse(bytes: impl Into<Bytes>) -> Result<BtfData, BtfError> {
        let bytes = bytes.into();
        let layout = Layout::new(&bytes, None)?;
        Ok(BtfData {
            bytes,
            layout: Arc::new(layout),
            base: None,
        })
    }

    /// Parses base BTF and records where its named non-FUNC types are in the same pass (for BTF
    /// that will be looked up by name, like the kernel's): the first few of those lookups scan
    /// them, as libbpf scans all types, and later ones use a name index built from them. (Other
    /// BTF builds its index on first lookup.)
    pub fn parse_indexed(bytes: impl Into<Bytes>) -> Result<BtfData, BtfError> {
        let bytes = bytes.into();
        let layout = Layout::new_keyed(&bytes)?;
        Ok(BtfData {
            bytes,
            layout,
            base: None,
        })
    }

    /// Parses split BTF (module BTF) on top of `base`.
    pub fn parse_split(bytes: impl Into<Bytes>, base: Arc<BtfData>) -> Result<BtfData, BtfError> {
        let bytes = bytes.into();
        let layout = Layout::new(&bytes, Some(&base.btf()))?;
        Ok(BtfData {
            bytes,
            layout: Arc::new(layout),
            base: Some(base),
        })
    }

    /// A view of this BTF (cheap: no parsing, no copying of type data).
    pub fn btf(&self) -> Btf<'_> {
        Btf::from_parts(
            &self.bytes,
            Arc::clone(&self.layout),
            self.base.as_ref().map(|b| Box::new(b.btf())),
        )
    }

    /// The raw blob.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// The base BTF of split BTF.
    pub fn base(&self) -> Option<&Arc<BtfData>> {
        self.base.as_ref()
    }
}

impl<'a> Btf<'a> {
    /// Copies this view's bytes into an owning [`BtfData`] that shares the already computed type
    /// offsets and name index (for split BTF the base is copied too).
    pub fn to_owned_data(&self) -> BtfData {
        BtfData {
            bytes: Bytes::copy_from_slice(self.data()),
            layout: Arc::clone(self.layout()),
            base: self.base().map(|b| Arc::new(b.to_owned_data())),
        }
    }
}
