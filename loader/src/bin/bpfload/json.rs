//! `--json` output, written as it is produced in serde_json's pretty format (two-space indent,
//! `"key": value`, `{}`/`[]` when empty). The documents used to be built as `serde_json::Value`s
//! with `json!`, whose per-field code (key allocation, `to_value`, unwrap, map insert, drop) was
//! ~10 KB of the static binary (issue 8). Callers write object keys in sorted order, the order
//! serde_json's map prints them in, so the text is unchanged. The library's reports (probe,
//! token) are written the same way (reports.rs).

use std::fmt::Write as _;

/// A pretty JSON document being written.
pub struct Json {
    out: String,
    /// Open containers: (is an object, has an element yet).
    open: Vec<(bool, bool)>,
    /// A key was just written; the next value goes on its line.
    after_key: bool,
}

impl Json {
    pub fn new() -> Json {
        Json {
            out: String::new(),
            open: Vec::new(),
            after_key: false,
        }
    }

    /// The finished document.
    pub fn finish(self) -> String {
        self.out
    }

    /// Where the next element starts: after a key, or on a new line in an array.
    fn element(&mut self) {
        if std::mem::take(&mut self.after_key) {
            return;
        }
        self.separator();
    }

    /// `,` after a previous element, then a new line at the current depth.
    fn separator(&mut self) {
        if let Some((_, has)) = self.open.last_mut() {
            if *has {
                self.out.push(',');
            }
            *has = true;
            let depth = self.open.len();
            newline(&mut self.out, depth);
        }
    }

    pub fn begin_object(&mut self) -> &mut Self {
        self.element();
        self.out.push('{');
        self.open.push((true, false));
        self
    }

    pub fn begin_array(&mut self) -> &mut Self {
        self.element();
        self.out.push('[');
        self.open.push((false, false));
        self
    }

    /// Closes the innermost object or array.
    pub fn end(&mut self) -> &mut Self {
        if let Some((is_object, has)) = self.open.pop() {
            if has {
                newline(&mut self.out, self.open.len());
            }
            self.out.push(if is_object { '}' } else { ']' });
        }
        self
    }

    pub fn key(&mut self, k: &str) -> &mut Self {
        self.separator();
        write_str(&mut self.out, k);
        self.out.push_str(": ");
        self.after_key = true;
        self
    }

    pub fn str(&mut self, s: &str) -> &mut Self {
        self.element();
        write_str(&mut self.out, s);
        self
    }

    pub fn u64(&mut self, n: u64) -> &mut Self {
        self.element();
        let _ = write!(self.out, "{n}");
        self
    }

    pub fn i64(&mut self, n: i64) -> &mut Self {
        self.element();
        let _ = write!(self.out, "{n}");
        self
    }

    pub fn bool(&mut self, b: bool) -> &mut Self {
        self.element();
        self.out.push_str(if b { "true" } else { "false" });
        self
    }

    pub fn null(&mut self) -> &mut Self {
        self.element();
        self.out.push_str("null");
        self
    }

    pub fn opt_str(&mut self, s: Option<&str>) -> &mut Self {
        match s {
            Some(s) => self.str(s),
            None => self.null(),
        }
    }

    pub fn opt_u64(&mut self, n: Option<u64>) -> &mut Self {
        match n {
            Some(n) => self.u64(n),
            None => self.null(),
        }
    }

    /// `key` and a string value.
    pub fn field_str(&mut self, k: &str, s: &str) -> &mut Self {
        self.key(k).str(s)
    }

    /// `key` and a number value.
    pub fn field_u64(&mut self, k: &str, n: u64) -> &mut Self {
        self.key(k).u64(n)
    }

    /// An array of strings.
    pub fn strs<'s>(&mut self, items: impl Iterator<Item = &'s str>) -> &mut Self {
        self.begin_array();
        for s in items {
            self.str(s);
        }
        self.end()
    }
}

fn newline(out: &mut String, depth: usize) {
    out.push('\n');
    for _ in 0..depth {
        out.push_str("  ");
    }
}

/// A JSON string literal, escaped as serde_json does: `"` and `\`, the short escapes for
/// \b \t \n \f \r, `\u00xx` for the other control characters; everything else verbatim.
fn write_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c if c < ' ' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// serde_json's own printer is the reference.
    #[test]
    fn strings_are_escaped_as_serde_json_escapes_them() {
        let all_controls: String = (0u8..0x20).map(char::from).collect();
        for s in ["", "plain", &format!("q\"b\\s/{all_controls}\u{7f}é€😀")] {
            let mut j = Json::new();
            j.str(s);
            assert_eq!(j.finish(), serde_json::to_string(s).unwrap(), "{s:?}");
        }
    }

    #[test]
    fn written_documents_print_as_serde_json_prints_them() {
        let mut j = Json::new();
        j.begin_object();
        j.key("a").begin_array().end();
        j.key("b").begin_object().end();
        j.key("c").begin_array();
        j.begin_object()
            .field_u64("n", 1)
            .key("s")
            .opt_str(None)
            .end();
        j.u64(7).i64(-3).bool(false).opt_u64(Some(5));
        j.strs(["x", "y"].into_iter());
        j.end();
        j.key("d").begin_object().key("z").begin_array().u64(1);
        j.begin_object().key("w").null().end().end().end();
        j.field_str("e", "tab\there");
        j.end();
        let expected = json!({
            "a": [], "b": {},
            "c": [{"n": 1, "s": null}, 7, -3, false, 5, ["x", "y"]],
            "d": {"z": [1, {"w": null}]},
            "e": "tab\there",
        });
        assert_eq!(j.finish(), serde_json::to_string_pretty(&expected).unwrap());
    }
}
