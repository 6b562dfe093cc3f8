//! `bpf_object__sanitize_prog`: on kernels without `bpf_probe_read_{kernel,user}[_str]`, calls to
//! them fall back to `bpf_probe_read[_str]`, which old kernels have.

use super::Linked;
use crate::insn::CALL;

const PROBE_READ: i32 = 4;
const PROBE_READ_STR: i32 = 45;
const PROBE_READ_USER: i32 = 112;
const PROBE_READ_KERNEL: i32 = 113;
const PROBE_READ_USER_STR: i32 = 114;
const PROBE_READ_KERNEL_STR: i32 = 115;

/// Rewrites the helper calls; `has_probe_read_kernel` is asked only if such a call exists.
pub(crate) fn sanitize(l: &mut Linked, has_probe_read_kernel: impl FnOnce() -> bool) {
    let mut supported: Option<bool> = None;
    let mut ask = Some(has_probe_read_kernel);
    for insn in &mut l.insns {
        // insn_is_helper_call
        if insn.code != CALL || insn.src() != 0 || insn.dst() != 0 {
            continue;
        }
        let fallback = match insn.imm {
            PROBE_READ_KERNEL | PROBE_READ_USER => PROBE_READ,
            PROBE_READ_KERNEL_STR | PROBE_READ_USER_STR => PROBE_READ_STR,
            _ => continue,
        };
        let has = *supported.get_or_insert_with(|| ask.take().map(|f| f()).unwrap_or(true));
        if !has {
            insn.imm = fallback;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::insn::Insn;

    fn linked(imms: &[i32]) -> Linked {
        Linked {
            prog: 0,
            insns: imms
                .iter()
                .map(|&imm| Insn::new(CALL, 0, 0, 0, imm))
                .collect(),
            relos: Vec::new(),
            func_info: None,
            line_info: None,
            funcs: vec![0],
        }
    }

    #[test]
    fn downgrades_only_without_the_feature_and_asks_lazily() {
        let mut l = linked(&[1, PROBE_READ_KERNEL, PROBE_READ_USER_STR]);
        sanitize(&mut l, || false);
        assert_eq!(
            l.insns.iter().map(|i| i.imm).collect::<Vec<_>>(),
            vec![1, PROBE_READ, PROBE_READ_STR]
        );
        let mut l = linked(&[PROBE_READ_KERNEL]);
        sanitize(&mut l, || true);
        assert_eq!(l.insns[0].imm, PROBE_READ_KERNEL);
        let mut l = linked(&[1, 2]);
        sanitize(&mut l, || panic!("asked without a probe_read call"));
    }
}
