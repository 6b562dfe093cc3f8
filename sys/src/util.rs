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

/// The running kernel's version from `uname -r` as `KERNEL_VERSION(a, b, c)` (what libbpf puts into
/// `kern_version` when the object has no `version` section). Distribution quirks are not applied.
pub fn kernel_version() -> io::Result<u32> {
    let mut uts = std::mem::MaybeUninit::<libc::utsname>::zeroed();
    // SAFETY: `uts` is a writable utsname buffer; uname fills it and returns 0 on success.
    if unsafe { libc::uname(uts.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: uname succeeded, so the struct is initialised (it was zeroed before as well).
    let uts = unsafe { uts.assume_init() };
    let release: Vec<u8> = uts
        .release
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    let release = String::from_utf8_lossy(&release);
    parse_release(&release).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("bad kernel release {release:?}"),
        )
    })
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
}
