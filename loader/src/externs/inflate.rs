//! A DEFLATE (RFC 1951) decoder for the body of a gzip member.
//!
//! Only `/proc/config.gz` and gzipped `/boot/config-*` go through it, once per load that needs
//! the system's kconfig. It replaces flate2 + miniz_oxide, which were ~11 KB of the static
//! `bpfload` binary next to the copy of miniz_oxide that std links for its backtraces anyway
//! (issue 8). It accepts and rejects what miniz_oxide does (over-subscribed codes, incomplete
//! codes with more than one symbol, bad block types, invalid length or distance symbols, stored
//! blocks whose length check fails; a distance before the start of the output copies zeros, as
//! from miniz_oxide's zeroed window) and reports errors with flate2's texts: "corrupt deflate
//! stream", and "incomplete deflate stream" for a truncated one.
//!
//! Codes up to [`FAST_BITS`] long are decoded with one table lookup, longer ones bit by bit
//! (canonical decoding as in zlib's `puff.c`): the kernel's config decodes in about a
//! millisecond.

use std::io::{self, ErrorKind};

/// Longest code length in DEFLATE.
const MAX_BITS: usize = 15;
/// Bits resolved by the lookup table.
const FAST_BITS: u32 = 9;

/// Length symbols 257..=285: base lengths and extra bits.
const LEN_BASE: [u16; 29] = [
    3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131,
    163, 195, 227, 258,
];
const LEN_EXTRA: [u8; 29] = [
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
];
/// Distance symbols 0..=29: base distances and extra bits.
const DIST_BASE: [u16; 30] = [
    1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537,
    2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577,
];
const DIST_EXTRA: [u8; 30] = [
    0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13,
    13,
];
/// Order of the code length code lengths in a dynamic block header.
const CLEN_ORDER: [usize; 19] = [
    16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15,
];

pub(crate) fn corrupt() -> io::Error {
    io::Error::new(ErrorKind::InvalidInput, "corrupt deflate stream")
}

/// The input ended inside the stream (flate2's error).
fn eof() -> io::Error {
    io::Error::new(ErrorKind::UnexpectedEof, "incomplete deflate stream")
}

/// LSB-first bit reader over the input.
struct Bits<'a> {
    data: &'a [u8],
    /// Next byte of `data` to load into `buf`.
    pos: usize,
    buf: u64,
    /// Valid bits in `buf`.
    cnt: u32,
}

impl Bits<'_> {
    fn refill(&mut self) {
        if let Some(next) = self.data.get(self.pos..self.pos + 8) {
            // Whole bytes that fit: 7 when the buffer is empty, fewer as it fills.
            let word = u64::from_le_bytes(next.try_into().expect("8 bytes"));
            let n = (63 - self.cnt) / 8;
            self.buf |= word << self.cnt;
            self.pos += n as usize;
            self.cnt += n * 8;
            // Bits of a byte only partly loaded are loaded again by the next refill.
            self.buf &= (1u64 << self.cnt) - 1;
            return;
        }
        while self.cnt <= 56 {
            let Some(&b) = self.data.get(self.pos) else {
                break;
            };
            self.buf |= u64::from(b) << self.cnt;
            self.pos += 1;
            self.cnt += 8;
        }
    }

    /// The next `n` (at most 16) bits.
    fn bits(&mut self, n: u32) -> io::Result<u32> {
        if self.cnt < n {
            self.refill();
            if self.cnt < n {
                return Err(eof());
            }
        }
        let v = (self.buf & ((1u64 << n) - 1)) as u32;
        self.buf >>= n;
        self.cnt -= n;
        Ok(v)
    }

    /// Drops the bits up to the next byte boundary; returns the offset of that byte.
    fn align(&mut self) -> usize {
        let whole = (self.cnt / 8) as usize;
        let at = self.pos - whole;
        self.pos = at;
        self.buf = 0;
        self.cnt = 0;
        at
    }
}

/// A canonical Huffman code.
struct Huffman {
    /// Number of codes of each length.
    count: [u16; MAX_BITS + 1],
    /// Symbols ordered by code (length, then symbol value).
    symbol: [u16; 288],
    /// For each `FAST_BITS`-bit input: `symbol | length << 9` of the code it starts with, or 0
    /// when that code is longer (or does not exist).
    fast: [u16; 1 << FAST_BITS],
}

impl Huffman {
    /// The code with these code lengths (0: symbol unused), or `None` when the lengths are
    /// over-subscribed, or incomplete with more than one symbol (miniz_oxide's checks).
    fn new(lengths: &[u8]) -> Option<Box<Huffman>> {
        let mut h = Box::new(Huffman {
            count: [0; MAX_BITS + 1],
            symbol: [0; 288],
            fast: [0; 1 << FAST_BITS],
        });
        for &l in lengths {
            h.count[l as usize] += 1;
        }
        let used = lengths.len() - h.count[0] as usize;
        let mut left: i32 = 1;
        for len in 1..=MAX_BITS {
            left = (left << 1) - i32::from(h.count[len]);
            if left < 0 {
                return None;
            }
        }
        if left > 0 && used > 1 {
            return None;
        }
        // First index in `symbol` and first code of each length.
        let mut offs = [0u16; MAX_BITS + 2];
        let mut next_code = [0u32; MAX_BITS + 2];
        let mut code = 0u32;
        for len in 1..=MAX_BITS {
            offs[len + 1] = offs[len] + h.count[len];
            let shorter = if len == 1 { 0 } else { h.count[len - 1] };
            code = (code + u32::from(shorter)) << 1;
            next_code[len] = code;
        }
        for (sym, &l) in lengths.iter().enumerate() {
            if l == 0 {
                continue;
            }
            let l = l as usize;
            h.symbol[offs[l] as usize] = sym as u16;
            offs[l] += 1;
            let c = next_code[l];
            next_code[l] += 1;
            if l as u32 <= FAST_BITS {
                // Codes are sent most significant bit first: index the table by the reversed
                // code, with every value of the bits that follow it.
                let rev = (c.reverse_bits() >> (32 - l)) as usize;
                let entry = sym as u16 | (l as u16) << 9;
                let mut i = rev;
                while i < h.fast.len() {
                    h.fast[i] = entry;
                    i += 1 << l;
                }
            }
        }
        Some(h)
    }

    fn decode(&self, b: &mut Bits<'_>) -> io::Result<u16> {
        if b.cnt < MAX_BITS as u32 {
            b.refill();
        }
        let e = self.fast[(b.buf & ((1 << FAST_BITS) - 1)) as usize];
        if e != 0 {
            let len = u32::from(e >> 9);
            if len > b.cnt {
                return Err(eof());
            }
            b.buf >>= len;
            b.cnt -= len;
            return Ok(e & 0x1ff);
        }
        // Bit by bit: `code` is the code read so far, `first` the first code of its length,
        // `index` the position of that first code in `symbol`.
        let (mut code, mut first, mut index) = (0i32, 0i32, 0i32);
        for len in 1..=MAX_BITS {
            code |= b.bits(1)? as i32;
            let count = i32::from(self.count[len]);
            if code - first < count {
                return Ok(self.symbol[(index + code - first) as usize]);
            }
            index += count;
            first = (first + count) << 1;
            code <<= 1;
        }
        Err(corrupt())
    }
}

/// Inflates the DEFLATE stream at the start of `data`, producing at most `limit` bytes.
/// Returns the output and, when the stream ended before the limit, the length of the stream
/// in bytes (where the gzip trailer starts).
pub fn inflate(data: &[u8], limit: u64) -> io::Result<(Vec<u8>, Option<usize>)> {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let mut out: Vec<u8> = Vec::new();
    if limit == 0 {
        return Ok((out, None));
    }
    // Text compresses about 4:1 (the kernel's config 5:1); within the caller's limit.
    out.reserve(data.len().saturating_mul(4).min(limit));
    let mut b = Bits {
        data,
        pos: 0,
        buf: 0,
        cnt: 0,
    };
    loop {
        let last = b.bits(1)?;
        match b.bits(2)? {
            0 => {
                let at = b.align();
                let hdr = data.get(at..at + 4).ok_or_else(eof)?;
                let len = u16::from_le_bytes([hdr[0], hdr[1]]);
                if len != !u16::from_le_bytes([hdr[2], hdr[3]]) {
                    return Err(corrupt());
                }
                let start = at + 4;
                let avail = &data[start..];
                let take = (len as usize).min(avail.len());
                out.extend_from_slice(&avail[..take.min(limit - out.len())]);
                if out.len() >= limit {
                    return Ok((out, None));
                }
                if take < len as usize {
                    return Err(eof());
                }
                b.pos = start + take;
            }
            1 => {
                let mut lengths = [0u8; 288 + 32];
                lengths[..144].fill(8);
                lengths[144..256].fill(9);
                lengths[256..280].fill(7);
                lengths[280..288].fill(8);
                lengths[288..].fill(5);
                let lit = Huffman::new(&lengths[..288]).ok_or_else(corrupt)?;
                let dist = Huffman::new(&lengths[288..]).ok_or_else(corrupt)?;
                if block(&mut b, &lit, &dist, &mut out, limit)? {
                    return Ok((out, None));
                }
            }
            2 => {
                let (lit, dist) = dynamic_codes(&mut b)?;
                if block(&mut b, &lit, &dist, &mut out, limit)? {
                    return Ok((out, None));
                }
            }
            _ => return Err(corrupt()),
        }
        if last == 1 {
            let end = b.align();
            return Ok((out, Some(end)));
        }
    }
}

/// Reads a dynamic block's code definitions.
fn dynamic_codes(b: &mut Bits<'_>) -> io::Result<(Box<Huffman>, Box<Huffman>)> {
    let nlen = b.bits(5)? as usize + 257;
    let ndist = b.bits(5)? as usize + 1;
    let ncode = b.bits(4)? as usize + 4;
    let mut clens = [0u8; 19];
    for &i in &CLEN_ORDER[..ncode] {
        clens[i] = b.bits(3)? as u8;
    }
    let clen = Huffman::new(&clens).ok_or_else(corrupt)?;
    let mut lengths = [0u8; 288 + 32];
    let total = nlen + ndist;
    let mut i = 0;
    while i < total {
        let sym = clen.decode(b)?;
        let (value, repeat) = match sym {
            0..=15 => (sym as u8, 1),
            16 => {
                let prev = *i
                    .checked_sub(1)
                    .and_then(|p| lengths.get(p))
                    .ok_or_else(corrupt)?;
                (prev, 3 + b.bits(2)? as usize)
            }
            17 => (0, 3 + b.bits(3)? as usize),
            _ => (0, 11 + b.bits(7)? as usize),
        };
        if i + repeat > total {
            return Err(corrupt());
        }
        lengths[i..i + repeat].fill(value);
        i += repeat;
    }
    let lit = Huffman::new(&lengths[..nlen]).ok_or_else(corrupt)?;
    let dist = Huffman::new(&lengths[nlen..total]).ok_or_else(corrupt)?;
    Ok((lit, dist))
}

/// Decodes one compressed block into `out`; true when `limit` was reached (`out` is cut to it).
fn block(
    b: &mut Bits<'_>,
    lit: &Huffman,
    dist: &Huffman,
    out: &mut Vec<u8>,
    limit: usize,
) -> io::Result<bool> {
    loop {
        let sym = lit.decode(b)? as usize;
        if sym < 256 {
            out.push(sym as u8);
        } else if sym == 256 {
            return Ok(false);
        } else {
            let s = sym - 257;
            if s >= LEN_BASE.len() {
                return Err(corrupt());
            }
            let len = LEN_BASE[s] as usize + b.bits(u32::from(LEN_EXTRA[s]))? as usize;
            let d = dist.decode(b)? as usize;
            if d >= DIST_BASE.len() {
                return Err(corrupt());
            }
            let back = DIST_BASE[d] as usize + b.bits(u32::from(DIST_EXTRA[d]))? as usize;
            if back > out.len() {
                // miniz_oxide's window starts out as zeros and flate2 does not check the
                // distance against the output: a reference before the start copies zeros.
                for _ in 0..len {
                    let c = out.len().checked_sub(back).map_or(0, |i| out[i]);
                    out.push(c);
                }
            } else if back >= len {
                let from = out.len() - back;
                out.extend_from_within(from..from + len);
            } else {
                // Overlapping copy: repeats the last `back` bytes.
                let from = out.len() - back;
                out.reserve(len);
                for k in 0..len {
                    let c = out[from + k];
                    out.push(c);
                }
            }
        }
        if out.len() >= limit {
            out.truncate(limit);
            return Ok(true);
        }
    }
}
