//! gzip members (RFC 1952) for `/proc/config.gz` and gzipped `/boot/config-*`.
//!
//! The header and trailer are read here and the deflate body goes through `super::inflate`:
//! flate2's `GzDecoder` checks the trailer with crc32fast, whose tables were ~25 KB of the static
//! `bpfload` binary (issue 8's size target), and its inflater was another ~11 KB. The checks are
//! flate2's (which stays the reference in the tests): magic, method 8, no
//! reserved flag bits, optional FEXTRA/FNAME/FCOMMENT fields, the header CRC16 when FHCRC is set,
//! and the trailer's CRC32 and ISIZE; the error texts are flate2's too.

use std::io::{self, ErrorKind};

const FHCRC: u8 = 1 << 1;
const FEXTRA: u8 = 1 << 2;
const FNAME: u8 = 1 << 3;
const FCOMMENT: u8 = 1 << 4;
const FRESERVED: u8 = !(FHCRC | FEXTRA | FNAME | FCOMMENT | 1);

/// flate2's cap on a zero-terminated header field (FNAME, FCOMMENT).
const MAX_HEADER_FIELD: usize = 0xffff;

/// Inflates the gzip member at the start of `bytes`, producing at most `limit` bytes. As with
/// `GzDecoder::take(limit)`, output cut at `limit` is returned without the trailer check;
/// anything after the member is ignored.
pub fn gunzip(bytes: &[u8], limit: u64) -> io::Result<Vec<u8>> {
    Ok(member(bytes, limit)?.0)
}

/// Every member of a gzip stream, one after another, as zlib's `gzopen`/`gzgets` read a file
/// (libbpf reads the kernel config that way): after each member, bytes that start another gzip
/// header are the next member; anything else ends the stream and is ignored. Output of more than
/// `limit` bytes is an error, never a silent cut (a value cut mid-line would be read as another
/// value).
pub fn gunzip_all(bytes: &[u8], limit: u64) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut pos = 0;
    loop {
        let room = limit.saturating_sub(out.len() as u64);
        // One byte of slack tells a member that ends exactly at the limit from a longer one.
        let (part, len) = member(&bytes[pos..], room.saturating_add(1))?;
        let (Some(len), false) = (len, part.len() as u64 > room) else {
            return Err(io::Error::new(
                ErrorKind::InvalidData,
                format!("more than {limit} bytes of decompressed data"),
            ));
        };
        out.extend_from_slice(&part);
        pos += len;
        if !bytes[pos..].starts_with(&[0x1f, 0x8b]) {
            return Ok(out);
        }
    }
}

/// The member at the start of `bytes`: its output (at most `limit` bytes) and, when it ended
/// within the limit, its length with the trailer, whose CRC32 and ISIZE are checked. `None`:
/// the output was cut at `limit`, unchecked.
fn member(bytes: &[u8], limit: u64) -> io::Result<(Vec<u8>, Option<usize>)> {
    let body = header_len(bytes)?;
    let (out, end) = super::inflate::inflate(&bytes[body..], limit)?;
    let Some(end) = end else {
        return Ok((out, None));
    };
    let trailer = bytes
        .get(body + end..)
        .and_then(|t| t.get(..8))
        .ok_or_else(|| io::Error::from(ErrorKind::UnexpectedEof))?;
    let crc = u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
    let isize = u32::from_le_bytes([trailer[4], trailer[5], trailer[6], trailer[7]]);
    // ISIZE is the length modulo 2^32.
    if crc != crc32(&out) || isize != out.len() as u32 {
        return Err(corrupt());
    }
    Ok((out, Some(body + end + 8)))
}

/// Length of the member header: the offset of the deflate body.
fn header_len(b: &[u8]) -> io::Result<usize> {
    let eof = || io::Error::from(ErrorKind::UnexpectedEof);
    let fixed = b.get(..10).ok_or_else(eof)?;
    if fixed[0] != 0x1f || fixed[1] != 0x8b || fixed[2] != 8 || fixed[3] & FRESERVED != 0 {
        return Err(bad_header());
    }
    let flags = fixed[3];
    let mut pos = 10;
    if flags & FEXTRA != 0 {
        let xlen = b.get(pos..pos + 2).ok_or_else(eof)?;
        let xlen = u16::from_le_bytes([xlen[0], xlen[1]]) as usize;
        pos += 2 + xlen;
        if pos > b.len() {
            return Err(eof());
        }
    }
    for field in [FNAME, FCOMMENT] {
        if flags & field != 0 {
            let rest = &b[pos..];
            let nul = rest.iter().position(|&c| c == 0);
            match nul {
                Some(n) if n <= MAX_HEADER_FIELD => pos += n + 1,
                _ if rest.len() > MAX_HEADER_FIELD => {
                    return Err(io::Error::new(
                        ErrorKind::InvalidInput,
                        "gzip header field too long",
                    ))
                }
                _ => return Err(eof()),
            }
        }
    }
    if flags & FHCRC != 0 {
        let stored = b.get(pos..pos + 2).ok_or_else(eof)?;
        if u16::from_le_bytes([stored[0], stored[1]]) != crc32(&b[..pos]) as u16 {
            return Err(corrupt());
        }
        pos += 2;
    }
    Ok(pos)
}

/// CRC-32 (IEEE, reflected, polynomial 0xedb88320), as gzip uses. Eight bytes per step
/// ("slicing by 8"): the kernel's config is ~100 KB, and a byte at a time took longer than
/// inflating it.
fn crc32(data: &[u8]) -> u32 {
    let mut t = [[0u32; 256]; 8];
    for (i, slot) in t[0].iter_mut().enumerate() {
        let mut c = i as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xedb8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
        *slot = c;
    }
    for i in 0..256 {
        for k in 1..8 {
            let prev = t[k - 1][i];
            t[k][i] = (prev >> 8) ^ t[0][(prev & 0xff) as usize];
        }
    }
    let mut c = !0u32;
    let mut chunks = data.chunks_exact(8);
    for b in &mut chunks {
        let lo = c ^ u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        c = t[7][(lo & 0xff) as usize]
            ^ t[6][((lo >> 8) & 0xff) as usize]
            ^ t[5][((lo >> 16) & 0xff) as usize]
            ^ t[4][(lo >> 24) as usize]
            ^ t[3][b[4] as usize]
            ^ t[2][b[5] as usize]
            ^ t[1][b[6] as usize]
            ^ t[0][b[7] as usize];
    }
    for &b in chunks.remainder() {
        c = t[0][((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

fn bad_header() -> io::Error {
    io::Error::new(ErrorKind::InvalidInput, "invalid gzip header")
}

fn corrupt() -> io::Error {
    io::Error::new(
        ErrorKind::InvalidInput,
        "corrupt gzip stream does not have a matching checksum",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    /// flate2's own gzip reader is the reference.
    fn flate2_gunzip(bytes: &[u8], limit: u64) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes)
            .take(limit)
            .read_to_end(&mut out)
            .map(|_| out)
    }

    fn sample() -> Vec<u8> {
        (0..200_000u32)
            .flat_map(|i| format!("CONFIG_X{}={}\n", i % 977, i % 7).into_bytes())
            .collect()
    }

    fn gz(builder: flate2::GzBuilder, data: &[u8]) -> Vec<u8> {
        let mut e = builder.write(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn crc32_check_value() {
        // The CRC-32 catalogue's check value for "123456789".
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        assert_eq!(crc32(b""), 0);
        // Every length around the 8-byte steps, against the bitwise definition.
        let bitwise = |d: &[u8]| {
            let mut c = !0u32;
            for &b in d {
                c ^= u32::from(b);
                for _ in 0..8 {
                    c = if c & 1 != 0 {
                        0xedb8_8320 ^ (c >> 1)
                    } else {
                        c >> 1
                    };
                }
            }
            !c
        };
        let data: Vec<u8> = (0..100u32).map(|i| (i * 37 + 11) as u8).collect();
        for n in 0..data.len() {
            assert_eq!(crc32(&data[..n]), bitwise(&data[..n]), "{n} bytes");
        }
    }

    #[test]
    fn agrees_with_flate2_on_valid_members() {
        let data = sample();
        for builder in [
            flate2::GzBuilder::new(),
            flate2::GzBuilder::new()
                .filename("config")
                .comment("kernel config")
                .extra(vec![1, 2, 3, 4]),
        ] {
            let mut z = gz(builder, &data);
            assert_eq!(gunzip(&z, u64::MAX).unwrap(), data);
            assert_eq!(flate2_gunzip(&z, u64::MAX).unwrap(), data);
            // Trailing bytes after the member are ignored by both.
            z.extend_from_slice(b"garbage");
            assert_eq!(gunzip(&z, u64::MAX).unwrap(), data);
            assert_eq!(flate2_gunzip(&z, u64::MAX).unwrap(), data);
            // A limit cuts the output, as `take` does.
            assert_eq!(gunzip(&z, 1000).unwrap(), flate2_gunzip(&z, 1000).unwrap());
        }
    }

    /// Concatenated members are all read, as zlib reads them (found by review: only the first
    /// was, so the CONFIG_ lines of later members were missing); trailing non-gzip bytes end the
    /// stream; more output than the limit is an error, not a cut.
    #[test]
    fn every_member_is_read_and_the_limit_is_an_error() {
        use std::io::Read;
        let a = gz(flate2::GzBuilder::new(), b"CONFIG_A=y\n");
        let b = gz(flate2::GzBuilder::new().filename("b"), b"CONFIG_B=\"x\"\n");
        let mut z = [a.clone(), b, a].concat();
        let mut want = Vec::new();
        flate2::read::MultiGzDecoder::new(&z[..])
            .read_to_end(&mut want)
            .unwrap();
        assert_eq!(want, b"CONFIG_A=y\nCONFIG_B=\"x\"\nCONFIG_A=y\n");
        assert_eq!(gunzip_all(&z, u64::MAX).unwrap(), want);
        z.extend_from_slice(b"trailing garbage");
        assert_eq!(gunzip_all(&z, u64::MAX).unwrap(), want);
        let e = gunzip_all(&z, want.len() as u64 - 1).unwrap_err();
        assert!(e.to_string().contains("more than"), "{e}");
        assert_eq!(gunzip_all(&z, want.len() as u64).unwrap(), want);
        // A damaged second member is an error, not a silent end.
        let mut bad = z.clone();
        let second = gz(flate2::GzBuilder::new(), b"CONFIG_A=y\n").len();
        bad[second + 3] = 0xff;
        assert!(gunzip_all(&bad, u64::MAX).is_err());
    }

    #[test]
    fn header_crc_is_checked() {
        let data = b"CONFIG_BPF=y\n";
        let z = gz(flate2::GzBuilder::new().filename("c"), data);
        // Set FHCRC and insert the header's CRC16 after the header (10 bytes + "c\0").
        let mut h = z[..12].to_vec();
        h[3] |= FHCRC;
        let crc = (crc32(&h) as u16).to_le_bytes();
        let mut good = h.clone();
        good.extend_from_slice(&crc);
        good.extend_from_slice(&z[12..]);
        assert_eq!(gunzip(&good, u64::MAX).unwrap(), data);
        assert_eq!(flate2_gunzip(&good, u64::MAX).unwrap(), data);
        let mut bad = good.clone();
        bad[12] ^= 1;
        assert!(gunzip(&bad, u64::MAX).is_err());
        assert!(flate2_gunzip(&bad, u64::MAX).is_err());
    }

    #[test]
    fn corrupt_and_truncated_members_fail_like_flate2() {
        let data = sample();
        let z = gz(flate2::GzBuilder::new(), &data);
        let n = z.len();
        let mut cases: Vec<Vec<u8>> = Vec::new();
        // Wrong CRC32, wrong ISIZE.
        for at in [n - 8, n - 1] {
            let mut c = z.clone();
            c[at] ^= 0x40;
            cases.push(c);
        }
        // Bad magic, bad method, a reserved flag bit.
        for (at, x) in [(0, 1), (2, 1), (3, 0x20)] {
            let mut c = z.clone();
            c[at] ^= x;
            cases.push(c);
        }
        // Truncated in the header, the body and the trailer; an unterminated file name.
        for len in [0, 5, 9, n / 2, n - 4] {
            cases.push(z[..len].to_vec());
        }
        let mut c = z[..10].to_vec();
        c[3] |= FNAME;
        c.extend_from_slice(b"name-without-nul");
        cases.push(c);
        for c in &cases {
            let ours = gunzip(c, u64::MAX);
            let theirs = flate2_gunzip(c, u64::MAX);
            assert!(ours.is_err(), "{} bytes accepted", c.len());
            assert!(theirs.is_err(), "flate2 accepted {} bytes", c.len());
            assert_eq!(
                ours.unwrap_err().to_string(),
                theirs.unwrap_err().to_string(),
                "{} bytes",
                c.len()
            );
        }
    }

    #[test]
    fn system_config_gz_agrees_with_flate2() {
        let Ok(z) = std::fs::read(super::super::kconfig::PROC_CONFIG_GZ) else {
            eprintln!("SKIP system_config_gz_agrees_with_flate2: no /proc/config.gz");
            return;
        };
        let ours = gunzip(&z, 64 << 20).unwrap();
        assert_eq!(ours, flate2_gunzip(&z, 64 << 20).unwrap());
        assert!(!ours.is_empty());
    }

    #[test]
    fn stored_fixed_and_dynamic_blocks_agree_with_flate2() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut rnd = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let random: Vec<u8> = (0..70_000).map(|_| rnd() as u8).collect();
        let runs: Vec<u8> = (0..300_000u32).map(|i| (i / 1000 % 3) as u8).collect();
        let inputs: [&[u8]; 6] = [b"", b"a", b"CONFIG_BPF=y\n", &random, &runs, &sample()];
        for data in inputs {
            // Level 0: stored blocks; small inputs: fixed codes; the rest: dynamic codes.
            for level in [0, 1, 6, 9] {
                let mut e =
                    flate2::GzBuilder::new().write(Vec::new(), flate2::Compression::new(level));
                e.write_all(data).unwrap();
                let z = e.finish().unwrap();
                assert_eq!(gunzip(&z, u64::MAX).unwrap(), data, "level {level}");
                for limit in [0, 1, 100, 40_000] {
                    assert_eq!(
                        gunzip(&z, limit).unwrap(),
                        flate2_gunzip(&z, limit).unwrap(),
                        "level {level} limit {limit}"
                    );
                }
            }
        }
    }

    #[test]
    fn damaged_streams_fail_like_flate2() {
        let data = sample();
        let z = gz(flate2::GzBuilder::new(), &data[..20_000]);
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut rnd = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for _ in 0..300 {
            let mut c = z.clone();
            for _ in 0..1 + rnd() % 3 {
                let at = 10 + (rnd() as usize) % (c.len() - 18);
                c[at] ^= 1 << (rnd() % 8);
            }
            let ours = gunzip(&c, u64::MAX).map_err(|e| e.to_string());
            let theirs = flate2_gunzip(&c, u64::MAX).map_err(|e| e.to_string());
            assert_eq!(ours, theirs);
        }
    }
}
