//! Small facts about the running system that loading needs.

use std::io;

/// Number of possible CPUs, counted like libbpf's `libbpf_num_possible_cpus` from
/// `/sys/devices/system/cpu/possible` (e.g. `0-3` → 4, `0,2-3` → 3). Used to size PERF_EVENT_ARRAY maps with
/// `max_entries == 0` and per-CPU value buffers.
pub fn possible_cpus() -> io::Result<u32> {
    let text = std::fs::read_to_string("/sys/devices/system/cpu/possible")?;
    parse_cpu_list(&text).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("bad CPU list {:?}", text.trim()),
        )
    })
}

/// Parses a kernel CPU list (`"0-3,5\n"`) and counts the CPUs in it. None on malformed input.
pub fn parse_cpu_list(text: &str) -> Option<u32> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let mut count: u32 = 0;
    for part in text.split(',') {
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (a.trim().parse::<u32>().ok()?, b.trim().parse::<u32>().ok()?),
            None => {
                let v = part.trim().parse::<u32>().ok()?;
                (v, v)
            }
        };
        if hi < lo {
            return None;
        }
        count = count.checked_add(hi - lo + 1)?;
    }
    Some(count)
}

/// `KERNEL_VERSION(a, b, c)` as the kernel computes it (`c` saturates at 255).
pub const fn kernel_version_code(a: u32, b: u32, c: u32) -> u32 {
    (a << 16) + (b << 8) + if c > 255 { 255 } else { c }
}

/// The running kernel's version as libbpf's `get_kernel_version` computes it (what it puts into
/// `kern_version` when the object has no `version` section, and into `LINUX_KERNEL_VERSION`):
/// Ubuntu's `/proc/version_signature` first, then the version Debian writes into `uname -v`,
/// then `uname -r`, which must start with three numbers.
pub fn kernel_version() -> io::Result<u32> {
    let mut uts = std::mem::MaybeUninit::<libc::utsname>::zeroed();
    // SAFETY: `uts` is a writable utsname buffer; uname fills it and returns 0 on success.
    if unsafe { libc::uname(uts.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: uname succeeded, so the struct is initialised (it was zeroed before as well).
    let uts = unsafe { uts.assume_init() };
    let field = |f: &[libc::c_char]| -> String {
        let bytes: Vec<u8> = f
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    let (release, version) = (field(&uts.release), field(&uts.version));
    let signature = std::fs::read_to_string("/proc/version_signature").ok();
    version_of(signature.as_deref(), &release, &version).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("failed to get kernel version from release {release:?}"),
        )
    })
}

/// libbpf's `get_kernel_version` on the given sources (`None`: no readable
/// `/proc/version_signature`).
pub fn version_of(signature: Option<&str>, release: &str, version: &str) -> Option<u32> {
    // Ubuntu: "Ubuntu 5.15.0-91.101-generic 5.15.131" (`fscanf("%*s %*s %u.%u.%u")`).
    if let Some(v) = signature
        .and_then(|s| s.split_whitespace().nth(2))
        .and_then(three_numbers)
    {
        return Some(v);
    }
    // Debian: "#1 SMP Debian 4.19.260-1 (2022-09-29)" (`sscanf(strstr(..), "Debian %u.%u.%u")`).
    if let Some(v) = version
        .find("Debian ")
        .and_then(|at| three_numbers(version[at + 7..].trim_start()))
    {
        return Some(v);
    }
    three_numbers(release.trim_start())
}

/// `sscanf(s, "%u.%u.%u")` == 3, as `KERNEL_VERSION`: two numbers each followed by '.', then a
/// number that may be followed by anything.
fn three_numbers(s: &str) -> Option<u32> {
    let mut parts = s.splitn(3, '.');
    let whole = |p: &str| -> Option<u32> {
        p.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| p.parse().ok())?
    };
    let a = whole(parts.next()?)?;
    let b = whole(parts.next()?)?;
    let c = parts.next()?;
    let c = c[..c.find(|ch: char| !ch.is_ascii_digit()).unwrap_or(c.len())]
        .parse()
        .ok()?;
    Some(kernel_version_code(a, b, c))
}

/// Parses `"6.18.0-1-amd64"` into `KERNEL_VERSION(6, 18, 0)`; a missing patch level counts as 0.
pub fn parse_release(release: &str) -> Option<u32> {
    let mut nums = release.split(|c: char| !c.is_ascii_digit());
    let a = nums.next()?.parse().ok()?;
    let b = nums.next()?.parse().ok()?;
    let c = nums.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    Some(kernel_version_code(a, b, c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-3\n"), Some(4));
        assert_eq!(parse_cpu_list("0"), Some(1));
        assert_eq!(parse_cpu_list("0,2-3"), Some(3));
        assert_eq!(parse_cpu_list(""), None);
        assert_eq!(parse_cpu_list("3-1"), None);
        assert_eq!(parse_cpu_list("x"), None);
        assert!(possible_cpus().unwrap() >= 1);
    }

    #[test]
    fn releases() {
        assert_eq!(parse_release("6.18.0-1-amd64"), Some((6 << 16) + (18 << 8)));
        assert_eq!(parse_release("5.4.300"), Some((5 << 16) + (4 << 8) + 255));
        assert_eq!(parse_release("6.1"), Some((6 << 16) + (1 << 8)));
        assert_eq!(parse_release("garbage"), None);
        assert!(kernel_version().unwrap() >= kernel_version_code(4, 0, 0));
    }

    /// libbpf's order: Ubuntu's signature, then Debian's `uname -v`, then `uname -r` with three
    /// numbers (found by review: only `uname -r` was read, so Ubuntu and Debian kernels got the
    /// wrong `LINUX_KERNEL_VERSION`, and "6.18-foo" was accepted where libbpf fails).
    #[test]
    fn kernel_version_follows_libbpf() {
        let v = kernel_version_code;
        let deb = "#1 SMP Debian 4.19.260-1 (2022-09-29)";
        let plain = "#1 SMP PREEMPT_DYNAMIC";
        assert_eq!(
            version_of(
                Some("Ubuntu 5.15.0-91.101-generic 5.15.131\n"),
                "5.15.0-91-generic",
                plain
            ),
            Some(v(5, 15, 131))
        );
        // A signature that does not parse falls through.
        assert_eq!(
            version_of(Some("Ubuntu junk"), "6.1.2", plain),
            Some(v(6, 1, 2))
        );
        assert_eq!(
            version_of(None, "4.19.0-22-amd64", deb),
            Some(v(4, 19, 255))
        );
        assert_eq!(
            version_of(None, "6.18.44-fc-v857", plain),
            Some(v(6, 18, 44))
        );
        assert_eq!(version_of(None, "6.18-foo", plain), None);
        assert_eq!(version_of(None, "6.18", plain), None);
        assert_eq!(version_of(None, "garbage", plain), None);
        assert_eq!(version_of(None, "6a.18.1", plain), None);
        assert_eq!(version_of(None, "6.18.x", plain), None);
    }
}
