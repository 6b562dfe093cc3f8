//! The library's reports (`probe`, `token`, a load's token step) as `--json`, written straight
//! into the document. The library's `to_json()` methods build `serde_json::Value`s with `json!`,
//! whose per-field code (key allocation, `to_value`, map insert, drop) and the map type behind it
//! were ~10 KB of the static binary (issue 8). The text is the same: keys in sorted order (the
//! order serde_json's map prints them in), same values; the tests below compare with `to_json()`.

use bpfload::token::{TokenReport, TokenStatus};
use bpfload_probe::{Delegation, FeatureResult, MaskKind, Method, NameTables, Report};

use crate::json::Json;

/// `bpfload probe --json` ([`Report::to_json`]).
pub fn probe(j: &mut Json, r: &Report) {
    let names = bpfload_probe::kernel_facts::name_tables();
    j.begin_object();
    j.key("delegation");
    match &r.delegation {
        Some((d, src)) => {
            j.begin_object();
            j.field_str("attachs", &hex(d.attachs));
            j.field_str("cmds", &hex(d.cmds));
            j.field_str("maps", &hex(d.maps));
            j.field_str("mount_options", &d.to_mount_options(names));
            j.field_str("progs", &hex(d.progs));
            j.field_str("source", &src.to_string());
            j.end();
        }
        None => {
            j.null();
        }
    }
    j.key("features").begin_array();
    for f in &r.results {
        feature(j, f);
    }
    j.end();
    j.key("token_path").opt_str(
        r.token_path
            .as_ref()
            .map(|p| p.display().to_string())
            .as_deref(),
    );
    j.end();
}

/// One feature ([`FeatureResult::to_json`]).
fn feature(j: &mut Json, f: &FeatureResult) {
    j.begin_object();
    j.field_str("description", f.feature.description());
    j.key("errno");
    match f.errno {
        Some(e) => {
            j.begin_object();
            j.key("code").i64(e.raw().into());
            j.field_str("name", e.name());
            j.end();
        }
        None => {
            j.null();
        }
    }
    j.field_str("feature", f.feature.name());
    j.key("method").begin_object();
    match &f.method {
        Method::Probe {
            prog_type,
            map_type,
            btf,
            token,
        } => {
            j.key("btf").bool(*btf);
            j.field_str("kind", "probe");
            j.key("map_type")
                .opt_str(map_type.map(bpfload_probe::map_type_name).as_deref());
            j.key("prog_type")
                .opt_str(prog_type.map(bpfload_probe::prog_type_name).as_deref());
            j.key("token").bool(*token);
        }
        Method::KernelBtf(e) => {
            j.field_str("evidence", &e.to_string());
            j.field_str("kind", "kernel_btf");
        }
        Method::Undecided => {
            j.field_str("kind", "none");
        }
    }
    j.end();
    j.key("note").opt_str(f.note.as_deref());
    j.field_str("support", f.support.as_str());
    j.end();
}

/// `bpfload token --json` ([`TokenStatus::to_json`]).
pub fn token_status(j: &mut Json, s: &TokenStatus) {
    j.begin_object();
    j.key("created").bool(s.created);
    j.key("errno").opt_str(s.errno.map(|e| e.name()));
    j.key("error").opt_str(s.error.as_deref());
    j.key("mount");
    match &s.mount {
        Some(m) => {
            j.begin_object();
            j.key("delegation");
            match &m.delegation {
                Some(d) => delegation(j, d, s.names),
                None => {
                    j.null();
                }
            }
            j.field_str("mount_point", &m.mount_point.to_string_lossy());
            j.field_str("options", &m.options);
            j.end();
        }
        None => {
            j.null();
        }
    }
    j.field_str("path", &s.path.to_string_lossy());
    j.key("token");
    match &s.token_delegation {
        Some((d, src)) => {
            j.begin_object();
            j.key("delegation");
            delegation(j, d, s.names);
            j.field_str("source", &src.to_string());
            j.end();
        }
        None => {
            j.null();
        }
    }
    j.end();
}

/// `{"attachs": {"mask": "0x..", "names": [..]}, "cmds": .., "maps": .., "progs": ..}`: the
/// four masks, keyed by their mount option without `delegate_`, in sorted order.
fn delegation(j: &mut Json, d: &Delegation, names: &NameTables) {
    j.begin_object();
    for kind in [
        MaskKind::Attachs,
        MaskKind::Cmds,
        MaskKind::Maps,
        MaskKind::Progs,
    ] {
        let mask = d.mask(kind);
        j.key(kind.mount_option().trim_start_matches("delegate_"))
            .begin_object();
        j.field_str("mask", &hex(mask));
        j.key("names").begin_array();
        if mask != 0 {
            for n in bpfload_probe::delegation::format_mask(mask, names.table(kind)).split(':') {
                j.str(n);
            }
        }
        j.end();
        j.end();
    }
    j.end();
}

/// A load's token step ([`TokenReport::to_json`]).
pub fn token_report(j: &mut Json, r: &TokenReport) {
    j.begin_object();
    j.key("created").bool(r.created);
    j.key("error").opt_str(r.error.as_deref());
    j.field_str("mode", r.mode.as_str());
    j.key("path")
        .opt_str(r.path.as_ref().map(|p| p.to_string_lossy()).as_deref());
    j.end();
}

fn hex(v: u64) -> String {
    format!("{v:#x}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use bpfload::token::TokenMode;
    use bpfload_probe::{DelegationSource, Errno, Evidence, Feature, Support};
    use std::path::PathBuf;

    fn written(f: impl FnOnce(&mut Json)) -> String {
        let mut j = Json::new();
        f(&mut j);
        j.finish()
    }

    fn pretty(v: &serde_json::Value) -> String {
        serde_json::to_string_pretty(v).unwrap()
    }

    #[test]
    fn token_reports_as_to_json() {
        for mode in [
            TokenMode::Implicit,
            TokenMode::Explicit,
            TokenMode::Disabled,
        ] {
            for path in [
                None,
                Some(PathBuf::from("/sys/fs/bpf")),
                Some(PathBuf::from("/a\"b\n")),
            ] {
                for (created, error) in [(true, None), (false, Some("EPERM \\ \"x\"".to_string()))]
                {
                    let r = TokenReport {
                        mode,
                        path: path.clone(),
                        created,
                        error,
                    };
                    assert_eq!(written(|j| token_report(j, &r)), pretty(&r.to_json()));
                }
            }
        }
    }

    /// The running kernel's answers (whatever they are), and hand-made results covering every
    /// method, errno and note shape.
    #[test]
    fn probe_reports_as_to_json() {
        let mut r = match bpfload_probe::report(None) {
            Ok(r) => r,
            Err(e) => panic!("probe report: {e}"),
        };
        assert_eq!(written(|j| probe(j, &r)), pretty(&r.to_json()));
        let f = r.results[0].feature;
        r.results = vec![
            FeatureResult {
                feature: f,
                support: Support::Supported,
                method: Method::Probe {
                    prog_type: Some(aya_obj::generated::bpf_prog_type::BPF_PROG_TYPE_XDP),
                    map_type: Some(aya_obj::generated::bpf_map_type::BPF_MAP_TYPE_HASH),
                    btf: true,
                    token: false,
                },
                errno: Some(Errno::EPERM),
                note: Some("a \"note\"".into()),
            },
            FeatureResult {
                feature: Feature::ALL[1],
                support: Support::Missing,
                method: Method::Probe {
                    prog_type: None,
                    map_type: None,
                    btf: false,
                    token: true,
                },
                errno: None,
                note: None,
            },
            FeatureResult {
                feature: f,
                support: Support::Unknown,
                method: Method::KernelBtf(Evidence::Func("x".into())),
                errno: None,
                note: None,
            },
            FeatureResult {
                feature: f,
                support: Support::Unknown,
                method: Method::Undecided,
                errno: Some(Errno::EINVAL),
                note: None,
            },
        ];
        r.token_path = Some(PathBuf::from("/sys/fs/bpf"));
        r.delegation = Some((
            Delegation {
                cmds: 0x1,
                maps: 0,
                progs: u64::MAX,
                attachs: 0x30,
            },
            DelegationSource::MountInfo(PathBuf::from("/sys/fs/bpf")),
        ));
        assert_eq!(written(|j| probe(j, &r)), pretty(&r.to_json()));
    }

    #[test]
    fn token_status_as_to_json() {
        // Whatever this machine answers for these paths: a mount point, a plain directory, none.
        for p in ["/sys/fs/bpf", "/tmp", "/nonexistent"] {
            let mut s = bpfload::token::token_status(std::path::Path::new(p));
            assert_eq!(
                written(|j| token_status(j, &s)),
                pretty(&s.to_json()),
                "{p}"
            );
            // With every part present.
            let d = Delegation {
                cmds: 0x7,
                maps: 0,
                progs: u64::MAX,
                attachs: 0x1,
            };
            s.mount = Some(bpfload::token::BpffsMount {
                mount_point: PathBuf::from(p),
                options: "rw,delegate_cmds=any".into(),
                delegation: Some(d),
            });
            s.token_delegation = Some((d, DelegationSource::TokenFdinfo));
            s.errno = Some(Errno::EPERM);
            s.error = Some("no".into());
            assert_eq!(
                written(|j| token_status(j, &s)),
                pretty(&s.to_json()),
                "{p}"
            );
        }
    }
}
