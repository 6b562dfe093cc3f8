//! The command line: a small table-driven parser for `bpfload <COMMAND> [OPTIONS] [ARG]`.
//!
//! Hand-written instead of clap because the CLI is tiny and clap was ~130 KB of the static
//! binary (issue 8: the fully static `bpfload` must stay under the libbpf-rs and aya loaders).
//! The surface follows clap's conventions, which the binary used before: `--long VALUE` and
//! `--long=VALUE`, `--` ends the options, `-h`/`--help` everywhere, `-V`/`--version` and
//! `help [COMMAND]` at the top, usage errors on stderr with exit status 2. Arguments are
//! processed left to right; the first help request or error wins.

use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::process::ExitCode;

/// One `--long` option of a subcommand.
pub struct Opt {
    pub long: &'static str,
    /// The value's placeholder (`NAME` in `--program <NAME>`); `None` for a flag.
    pub value: Option<&'static str>,
    /// May be given more than once (its values accumulate).
    pub repeat: bool,
    /// The empty string is a valid value (paths must not be empty).
    pub empty_ok: bool,
    pub help: &'static str,
}

impl Opt {
    pub const fn flag(long: &'static str, help: &'static str) -> Opt {
        Opt {
            long,
            value: None,
            repeat: false,
            empty_ok: false,
            help,
        }
    }

    pub const fn value(long: &'static str, value: &'static str, help: &'static str) -> Opt {
        Opt {
            long,
            value: Some(value),
            repeat: false,
            empty_ok: false,
            help,
        }
    }

    /// `--long <VALUE>`, as shown in help and errors.
    fn spec(&self) -> String {
        match self.value {
            Some(v) => format!("--{} <{v}>", self.long),
            None => format!("--{}", self.long),
        }
    }
}

/// The single positional argument of a subcommand.
pub struct Pos {
    pub name: &'static str,
    pub required: bool,
    pub default: Option<&'static str>,
    pub help: &'static str,
}

impl Pos {
    /// `<NAME>` when required, `[NAME]` when optional.
    fn spec(&self) -> String {
        if self.required {
            format!("<{}>", self.name)
        } else {
            format!("[{}]", self.name)
        }
    }
}

/// A subcommand: its name, one-line description, options and positional argument.
pub struct Sub {
    pub name: &'static str,
    pub about: &'static str,
    pub opts: &'static [Opt],
    pub pos: Option<Pos>,
}

/// What the command line asked for, before each subcommand turns it into its typed arguments.
pub struct Matches {
    sub: &'static Sub,
    /// (index into `sub.opts`, value) in command-line order; flags have an empty value.
    given: Vec<(usize, OsString)>,
    pos: Option<OsString>,
}

impl Matches {
    /// The subcommand's name.
    pub fn command(&self) -> &'static str {
        self.sub.name
    }

    fn index(&self, long: &str) -> usize {
        self.sub
            .opts
            .iter()
            .position(|o| o.long == long)
            .unwrap_or(usize::MAX)
    }

    pub fn flag(&self, long: &str) -> bool {
        let i = self.index(long);
        self.given.iter().any(|(j, _)| *j == i)
    }

    pub fn values(&self, long: &str) -> Vec<OsString> {
        let i = self.index(long);
        self.given
            .iter()
            .filter(|(j, _)| *j == i)
            .map(|(_, v)| v.clone())
            .collect()
    }

    pub fn value(&self, long: &str) -> Option<OsString> {
        self.values(long).pop()
    }

    /// The positional argument, or its default.
    pub fn pos(&self) -> Option<OsString> {
        self.pos
            .clone()
            .or_else(|| self.sub.pos.as_ref()?.default.map(OsString::from))
    }

    /// Every value of `--long` as UTF-8 (clap's `String` values refused anything else).
    pub fn strings(&self, long: &str) -> Result<Vec<String>, Exit> {
        self.values(long)
            .into_iter()
            .map(|v| {
                v.into_string().map_err(|_| {
                    usage_error(
                        self.sub,
                        "invalid UTF-8 was detected in one or more arguments",
                    )
                })
            })
            .collect()
    }
}

/// The process ends without running a command: help or version printed, or a usage error.
pub struct Exit(pub ExitCode);

/// The program name shown in usage lines: argv[0]'s file name, as clap did.
fn bin_name() -> String {
    std::env::args_os()
        .next()
        .and_then(|a| {
            std::path::Path::new(&a)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "bpfload".to_string())
}

/// Parses the command line (without argv[0]) against `subs`. Returns the chosen subcommand's
/// matches, or the exit status after printing help, the version, or a usage error.
pub fn parse(
    about: &str,
    subs: &'static [Sub],
    args: impl IntoIterator<Item = OsString>,
) -> Result<Matches, Exit> {
    let mut args = args.into_iter();
    let Some(first) = args.next() else {
        // No command: the help, as an error (clap's behaviour for a required subcommand).
        eprint!("{}", top_help(about, subs));
        return Err(Exit(ExitCode::from(2)));
    };
    let first_s = first.to_string_lossy();
    match &*first_s {
        "-h" | "--help" => return Err(print_help(&top_help(about, subs))),
        "-V" | "--version" => {
            outln!("bpfload {}", env!("CARGO_PKG_VERSION"));
            return Err(Exit(ExitCode::SUCCESS));
        }
        "help" => return Err(help_command(about, subs, args)),
        _ => {}
    }
    if first_s.starts_with('-') && first_s.len() > 1 {
        return Err(top_error(&format!("unexpected argument '{first_s}' found")));
    }
    let Some(sub) = subs.iter().find(|s| s.name == first_s) else {
        return Err(top_error(&format!("unrecognized subcommand '{first_s}'")));
    };
    parse_sub(sub, args)
}

/// `help [COMMAND]`: the top help, or the named subcommand's.
fn help_command(about: &str, subs: &[Sub], mut args: impl Iterator<Item = OsString>) -> Exit {
    let Some(name) = args.next() else {
        return print_help(&top_help(about, subs));
    };
    let name = name.to_string_lossy();
    let Some(sub) = subs.iter().find(|s| s.name == name) else {
        return top_error(&format!("unrecognized subcommand '{name}'"));
    };
    if let Some(extra) = args.next() {
        return usage_error(
            sub,
            &format!("unrecognized subcommand '{}'", extra.to_string_lossy()),
        );
    }
    print_help(&sub_help(sub))
}

fn parse_sub(sub: &'static Sub, mut args: impl Iterator<Item = OsString>) -> Result<Matches, Exit> {
    let mut m = Matches {
        sub,
        given: Vec::new(),
        pos: None,
    };
    let mut options_done = false;
    while let Some(arg) = args.next() {
        let text = arg.to_string_lossy();
        if !options_done && text == "--" {
            options_done = true;
            continue;
        }
        if !options_done && text.starts_with("--") {
            let (name, inline) = match text[2..].split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (&text[2..], None),
            };
            if name == "help" && inline.is_none() {
                return Err(print_help(&sub_help(sub)));
            }
            let Some(i) = sub.opts.iter().position(|o| o.long == name) else {
                return Err(unexpected(sub, &text));
            };
            let opt = &sub.opts[i];
            if !opt.repeat && m.given.iter().any(|(j, _)| *j == i) {
                return Err(usage_error(
                    sub,
                    &format!(
                        "the argument '{}' cannot be used multiple times",
                        opt.spec()
                    ),
                ));
            }
            let value = match (opt.value, inline) {
                (None, None) => OsString::new(),
                (None, Some(v)) => {
                    return Err(usage_error(
                        sub,
                        &format!(
                            "unexpected value '{v}' for '--{}' found; no more were expected",
                            opt.long
                        ),
                    ))
                }
                (Some(_), Some(_)) => inline_value(&arg),
                (Some(_), None) => match args.next() {
                    Some(v) if !looks_like_option(&v) => v,
                    _ => return Err(missing_value(&opt.spec())),
                },
            };
            if opt.value.is_some() && value.is_empty() && !opt.empty_ok {
                return Err(missing_value(&opt.spec()));
            }
            m.given.push((i, value));
            continue;
        }
        if !options_done && text.starts_with('-') && text.len() > 1 {
            // A cluster of short flags: only -h exists.
            return Err(match text[1..].chars().next() {
                Some('h') => print_help(&sub_help(sub)),
                _ => unexpected(sub, &text),
            });
        }
        match &sub.pos {
            Some(p) if m.pos.is_none() => {
                if arg.is_empty() {
                    return Err(missing_value(&p.spec()));
                }
                m.pos = Some(arg);
            }
            _ => {
                return Err(usage_error(
                    sub,
                    &format!("unexpected argument '{text}' found"),
                ))
            }
        }
    }
    if let Some(p) = &sub.pos {
        if p.required && m.pos.is_none() {
            return Err(usage_error(
                sub,
                &format!(
                    "the following required arguments were not provided:\n  {}",
                    p.spec()
                ),
            ));
        }
    }
    Ok(m)
}

/// A following argument that is an option itself, not the value of the previous one.
fn looks_like_option(v: &OsStr) -> bool {
    let b = v.as_encoded_bytes();
    b.len() > 1 && b[0] == b'-'
}

/// The raw bytes after the first `=` of `--name=value` (a path value need not be UTF-8).
fn inline_value(arg: &OsStr) -> OsString {
    use std::os::unix::ffi::OsStrExt;
    let b = arg.as_bytes();
    let at = b.iter().position(|&c| c == b'=').map_or(b.len(), |i| i + 1);
    OsStr::from_bytes(&b[at..]).to_os_string()
}

fn print_help(text: &str) -> Exit {
    out!("{text}");
    Exit(ExitCode::SUCCESS)
}

fn missing_value(spec: &str) -> Exit {
    eprint!(
        "error: a value is required for '{spec}' but none was supplied\n\n\
         For more information, try '--help'.\n"
    );
    Exit(ExitCode::from(2))
}

fn unexpected(sub: &Sub, arg: &str) -> Exit {
    usage_error(
        sub,
        &format!(
            "unexpected argument '{arg}' found\n\n  tip: to pass '{arg}' as a value, use '-- {arg}'"
        ),
    )
}

fn usage_error(sub: &Sub, msg: &str) -> Exit {
    error_with_usage(msg, &sub_usage(sub))
}

fn top_error(msg: &str) -> Exit {
    error_with_usage(msg, &format!("{} <COMMAND>", bin_name()))
}

fn error_with_usage(msg: &str, usage: &str) -> Exit {
    eprint!("error: {msg}\n\nUsage: {usage}\n\nFor more information, try '--help'.\n");
    Exit(ExitCode::from(2))
}

fn sub_usage(sub: &Sub) -> String {
    let mut u = format!("{} {}", bin_name(), sub.name);
    if !sub.opts.is_empty() {
        u.push_str(" [OPTIONS]");
    }
    if let Some(p) = &sub.pos {
        u.push(' ');
        u.push_str(&p.spec());
    }
    u
}

/// Rows of a help section, the first column padded to the widest entry plus two spaces.
fn section(out: &mut String, title: &str, rows: &[(String, String)]) {
    let width = rows.iter().map(|(a, _)| a.len()).max().unwrap_or(0);
    let _ = writeln!(out, "\n{title}:");
    for (a, b) in rows {
        let _ = writeln!(out, "  {a:<width$}  {b}");
    }
}

fn top_help(about: &str, subs: &[Sub]) -> String {
    let mut out = format!("{about}\n\nUsage: {} <COMMAND>\n", bin_name());
    let mut cmds: Vec<(String, String)> = subs
        .iter()
        .map(|s| (s.name.to_string(), s.about.to_string()))
        .collect();
    cmds.push((
        "help".into(),
        "Print this message or the help of the given subcommand(s)".into(),
    ));
    section(&mut out, "Commands", &cmds);
    section(
        &mut out,
        "Options",
        &[
            ("-h, --help".into(), "Print help".into()),
            ("-V, --version".into(), "Print version".into()),
        ],
    );
    out
}

fn sub_help(sub: &Sub) -> String {
    let mut out = format!("{}\n\nUsage: {}\n", sub.about, sub_usage(sub));
    if let Some(p) = &sub.pos {
        let help = match p.default {
            Some(d) => format!("{} [default: {d}]", p.help),
            None => p.help.to_string(),
        };
        section(&mut out, "Arguments", &[(p.spec(), help)]);
    }
    let mut rows: Vec<(String, String)> = sub
        .opts
        .iter()
        .map(|o| (format!("    {}", o.spec()), o.help.to_string()))
        .collect();
    rows.push(("-h, --help".into(), "Print help".into()));
    section(&mut out, "Options", &rows);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    static SUBS: &[Sub] = &[Sub {
        name: "load",
        about: "Load it",
        opts: &[
            Opt {
                repeat: true,
                ..Opt::value("program", "NAME", "Only this program")
            },
            Opt::flag("json", "JSON"),
            Opt {
                empty_ok: true,
                ..Opt::value("token-path", "PATH", "Token")
            },
            Opt::value("pin", "DIR", "Pin root"),
        ],
        pos: Some(Pos {
            name: "OBJECT",
            required: false,
            default: None,
            help: "The object",
        }),
    }];

    fn run(args: &[&str]) -> Result<Matches, u8> {
        parse("about", SUBS, args.iter().map(OsString::from)).map_err(|e| {
            // ExitCode has no accessor; compare through its Debug form.
            if format!("{:?}", e.0) == format!("{:?}", ExitCode::SUCCESS) {
                0
            } else {
                2
            }
        })
    }

    #[test]
    fn options_values_and_positional() {
        let m = run(&[
            "load",
            "--program",
            "a",
            "--json",
            "--program=b=c",
            "obj.o",
            "--token-path",
            "",
        ])
        .ok()
        .unwrap();
        assert_eq!(m.strings("program").ok().unwrap(), ["a", "b=c"]);
        assert!(m.flag("json"));
        assert_eq!(m.value("token-path"), Some(OsString::new()));
        assert_eq!(m.value("pin"), None);
        assert_eq!(m.pos(), Some(OsString::from("obj.o")));
        // After `--`, an option-looking argument is the positional.
        let m = run(&["load", "--", "--json"]).ok().unwrap();
        assert!(!m.flag("json"));
        assert_eq!(m.pos(), Some(OsString::from("--json")));
        // `-` alone is a value, not an option.
        let m = run(&["load", "--program", "-"]).ok().unwrap();
        assert_eq!(m.strings("program").ok().unwrap(), ["-"]);
    }

    #[test]
    fn usage_errors_exit_2_and_help_exits_0() {
        for bad in [
            &["load", "--bogus"][..],
            &["load", "a", "b"],
            &["load", "--json", "--json"],
            &["load", "--pin", "a", "--pin", "b"],
            &["load", "--json=1"],
            &["load", "--program"],
            &["load", "--program", "--json"],
            &["load", "--pin", ""],
            &["load", ""],
            &["load", "-V"],
            &["bogus"],
            &["--json"],
            &[],
            &["help", "bogus"],
        ] {
            assert_eq!(run(bad).err(), Some(2), "{bad:?}");
        }
        for help in [
            &["--help"][..],
            &["-h"],
            &["-V"],
            &["--version"],
            &["help"],
            &["help", "load"],
            &["load", "--help"],
            &["load", "-h"],
            &["load", "--pin=x", "-h", "--bogus"],
        ] {
            assert_eq!(run(help).err(), Some(0), "{help:?}");
        }
    }

    #[test]
    fn help_columns_line_up() {
        let h = sub_help(&SUBS[0]);
        assert!(
            h.contains("\n      --program <NAME>     Only this program\n"),
            "{h}"
        );
        assert!(
            h.contains("\n  -h, --help               Print help\n"),
            "{h}"
        );
        assert!(h.contains("\n  [OBJECT]  The object\n"), "{h}");
        assert!(h.contains(" load [OPTIONS] [OBJECT]\n"), "{h}");
        let t = top_help("about", SUBS);
        assert!(t.contains("\n  load  Load it\n"), "{t}");
        assert!(t.contains("\n  -V, --version  Print version\n"), "{t}");
    }
}
