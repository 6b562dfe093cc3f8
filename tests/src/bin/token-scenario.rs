//! One token scenario, run inside `userns-helper` (or directly): loads OBJECT with the bpfload
//! library, checks fd hygiene around the load, and prints one JSON line on stdout:
//!
//! ```text
//! {"ok": bool, "error": str|null, "token": {mode, path, created, error},
//!  "token_fd": {"fd": n, "target": "anon_inode:bpf-token", "cloexec": bool} | null,
//!  "programs": [{"name", "loaded", "error"}], "maps": [name...],
//!  "fds_before": n, "fds_loaded": n, "fds_after": n, "leaked": [target...],
//!  "token_fds_before_open": n, "token_fds_after_open": n, "token_fds_loaded": n, "token_fds_after": n}
//! ```
//!
//! `fds_after`/`leaked` are measured after the loaded object (or the error) is dropped, so any
//! fd the load created and did not close, the token included, shows up in `leaked`.
//!
//! Usage: `token-scenario OBJECT [--token-path P] [--token-fd-from P] [--freplace T:TP:EP]`
//! - `--token-path P`: the loader's `token_path` option (`""` disables tokens);
//! - `--token-fd-from P`: create a token from bpffs P here, hand it to the loader with
//!   `token_fd`, and close ours before loading (the loader must hold its own duplicate);
//! - `--freplace TARGET_OBJ:TARGET_PROG:EXT_PROG`: load TARGET_OBJ first (same token options)
//!   and aim OBJECT's EXT_PROG at its TARGET_PROG (`set_attach_target`).
//!
//! Exit status 0 when the JSON was printed (the test decides), 2 on usage errors.

use std::os::fd::{AsFd, AsRawFd};
use std::path::PathBuf;

use bpfload::{Loader, Object};
use bpfload_tests::userns::{fd_target, open_fds};
use serde_json::{json, Value};

fn usage(msg: &str) -> ! {
    eprintln!("token-scenario: {msg}");
    eprintln!(
        "usage: token-scenario OBJECT [--token-path P] [--token-fd-from P] [--freplace T:TP:EP]"
    );
    std::process::exit(2);
}

fn is_token_target(t: &str) -> bool {
    t.contains("bpf-token")
}

/// Prints log records at `info` and above (or `BPFLOAD_SCENARIO_LOG=debug`) to stderr, so a
/// test can check what a load says, e.g. that an implicit token failure stays quiet.
struct StderrLog;

impl log::Log for StderrLog {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.level() <= log::max_level()
    }
    fn log(&self, r: &log::Record<'_>) {
        if self.enabled(r.metadata()) {
            eprintln!("{} {}: {}", r.level(), r.target(), r.args());
        }
    }
    fn flush(&self) {}
}

fn main() {
    let level = match std::env::var("BPFLOAD_SCENARIO_LOG").as_deref() {
        Ok("debug") => log::LevelFilter::Debug,
        _ => log::LevelFilter::Info,
    };
    static LOGGER: StderrLog = StderrLog;
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(level);

    let mut args = std::env::args_os().skip(1);
    let object = PathBuf::from(args.next().unwrap_or_else(|| usage("missing OBJECT")));
    let mut token_path: Option<PathBuf> = None;
    let mut token_fd_from: Option<PathBuf> = None;
    let mut freplace: Option<String> = None;
    while let Some(a) = args.next() {
        let v = args
            .next()
            .unwrap_or_else(|| usage(&format!("{a:?} needs a value")));
        match a.to_str() {
            Some("--token-path") => token_path = Some(v.into()),
            Some("--token-fd-from") => token_fd_from = Some(v.into()),
            Some("--freplace") => freplace = Some(v.to_string_lossy().into_owned()),
            _ => usage(&format!("unknown option {a:?}")),
        }
    }

    let before = open_fds().expect("list /proc/self/fd");

    let mut loader = Loader::new();
    if let Some(p) = &token_path {
        loader = loader.token_path(p);
    }
    let mut setup_error = None;
    if let Some(p) = &token_fd_from {
        match bpfload::token::create_at(p) {
            Ok(own) => {
                loader = loader.token_fd(own.as_fd());
                // Ours goes away now: the loader must have duplicated it.
                drop(own);
            }
            Err((step, errno)) => {
                setup_error = Some(format!(
                    "creating our own token from {}: {step:?} {errno}",
                    p.display()
                ))
            }
        }
    }

    // freplace: load the target object first (same token options), then aim OBJECT's extension
    // program at the target program; the target's BTF is read with BPF_BTF_GET_FD_BY_ID.
    let mut target = None;
    if let (Some(spec), None) = (&freplace, &setup_error) {
        let parts: Vec<&str> = spec.splitn(3, ':').collect();
        let [tobj, tprog, ext] = parts[..] else {
            usage("--freplace needs TARGET_OBJ:TARGET_PROG:EXT_PROG")
        };
        let mut tl = Loader::new();
        if let Some(p) = &token_path {
            tl = tl.token_path(p);
        }
        match tl.load_file(tobj) {
            Ok(t) => match t.program(tprog).map(|p| p.result()) {
                Some(Ok(fd)) => {
                    loader = loader.set_attach_target(ext, Some(fd), Some(tprog));
                    target = Some(t);
                }
                _ => setup_error = Some(format!("target program {tprog} did not load")),
            },
            Err(e) => setup_error = Some(format!("loading the freplace target {tobj}: {e}")),
        }
    }

    let mut out = json!({});
    let token_fds_before_open = open_fds()
        .expect("list /proc/self/fd")
        .iter()
        .filter(|(_, t)| is_token_target(t))
        .count();
    out["token_fds_before_open"] = json!(token_fds_before_open);
    let result = match setup_error {
        Some(e) => Err(e),
        None => Object::open_file(&object)
            .map_err(|e| e.to_string())
            .and_then(|o| {
                // libbpf creates the token at prepare, never at open: nothing yet.
                let after_open = open_fds().expect("list /proc/self/fd");
                out["token_fds_after_open"] = json!(after_open
                    .iter()
                    .filter(|(_, t)| is_token_target(t))
                    .count());
                loader.load(&o).map_err(|e| {
                    // Keep the token report of a load that failed on its token.
                    if let bpfload::error::LoadError::Token(t) = &e {
                        out["token"] = t.report().to_json();
                    }
                    e.to_string()
                })
            }),
    };
    drop(loader);

    let loaded_fds = open_fds().expect("list /proc/self/fd");
    match &result {
        Ok(loaded) => {
            out["ok"] = json!(true);
            out["error"] = Value::Null;
            out["token"] = loaded.token_report().to_json();
            out["token_fd"] = match loaded.token_fd() {
                Some(fd) => json!({
                    "fd": fd.as_raw_fd(),
                    "target": fd_target(fd.as_raw_fd()),
                    "cloexec": bpfload_syscall::fd::is_cloexec(fd).unwrap_or(false),
                }),
                None => Value::Null,
            };
            out["programs"] = loaded
                .programs()
                .iter()
                .map(|p| {
                    json!({
                        "name": p.name(),
                        "loaded": p.is_loaded(),
                        "error": p.result().err().map(|e| e.to_string()),
                    })
                })
                .collect();
            out["maps"] = loaded.maps().iter().map(|m| json!(m.name())).collect();
        }
        Err(e) => {
            out["ok"] = json!(false);
            out["error"] = json!(e);
            out["token_fd"] = Value::Null;
            if out.get("token").is_none() {
                out["token"] = Value::Null;
            }
        }
    }
    drop(result);
    drop(target);

    let after = open_fds().expect("list /proc/self/fd");
    let leaked: Vec<String> = after
        .iter()
        .filter(|(fd, t)| !before.iter().any(|(b, bt)| b == fd && bt == t))
        .map(|(fd, t)| format!("{fd} -> {t}"))
        .collect();
    out["fds_before"] = json!(before.len());
    out["fds_loaded"] = json!(loaded_fds.len());
    out["token_fds_loaded"] = json!(loaded_fds
        .iter()
        .filter(|(_, t)| is_token_target(t))
        .count());
    out["fds_after"] = json!(after.len());
    out["leaked"] = json!(leaked);
    out["token_fds_after"] = json!(after.iter().filter(|(_, t)| is_token_target(t)).count());
    println!("{out}");
}
