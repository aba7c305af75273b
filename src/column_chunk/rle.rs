//! The RLE / bit-packed hybrid of definition levels and dictionary indices, and ULEB128 varints.

pub(super) fn put_uleb(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends `values` (each below `2^width`, `width` <= 32) in the RLE / bit-packed hybrid, without a length prefix:
/// values go in groups of 8, a group of 8 equal values starts an RLE run (as long as the value repeats), the rest is
/// bit-packed (the last group padded with zeros, which readers ignore past the page's value count). Looking at whole
/// groups keeps the scan branch-free per value; runs of 15 or more are always caught.
pub(super) fn put_hybrid(out: &mut Vec<u8>, values: &[u32], width: u8) {
    let n = values.len();
    let mut literal = 0;
    let mut i = 0;
    while i + 8 <= n {
        let v = values[i];
        if values[i..i + 8]
            .iter()
            .fold(true, |same, &x| same & (x == v))
        {
            let mut end = i + 8;
            while end < n && values[end] == v {
                end += 1;
            }
            put_packed(out, &values[literal..i], width);
            put_uleb(out, ((end - i) as u64) << 1);
            out.extend_from_slice(&v.to_le_bytes()[..usize::from(width).div_ceil(8)]);
            literal = end;
            i = end;
        } else {
            i += 8;
        }
    }
    put_packed(out, &values[literal..], width);
}

/// One bit-packed run of `values` (zero-padded to a multiple of 8), LSB first.
fn put_packed(out: &mut Vec<u8>, values: &[u32], width: u8) {
    if values.is_empty() {
        return;
    }
    let groups = values.len().div_ceil(8);
    put_uleb(out, ((groups as u64) << 1) | 1);
    let mut tail = [0u32; 8];
    let rest = values.len() % 8;
    tail[..rest].copy_from_slice(&values[values.len() - rest..]);
    let padded = (rest > 0).then_some(&tail[..]);
    let groups = values.chunks_exact(8).chain(padded);
    if width <= 16 {
        // A group of 8 values of `w` bits is `w` bytes: assembled in one register, written at once.
        // All 16 bytes are stored and the length then set back to the group's `w`: a copy of a fixed size is one
        // store, a copy of `w` bytes a call to memmove per group.
        let w = usize::from(width);
        out.reserve(values.len().div_ceil(8) * w + 16);
        for group in groups {
            // Four values of at most 16 bits fill a u64: two halves shifted in 64-bit registers, joined once.
            let half = |values: &[u32]| {
                values
                    .iter()
                    .enumerate()
                    .fold(0u64, |acc, (k, &v)| acc | u64::from(v) << (k * w))
            };
            let acc = u128::from(half(&group[..4])) | u128::from(half(&group[4..])) << (4 * w);
            let end = out.len() + w;
            out.extend_from_slice(&acc.to_le_bytes());
            out.truncate(end);
        }
        return;
    }
    let width = u32::from(width);
    let (mut acc, mut bits) = (0u64, 0u32);
    for &v in groups.flatten() {
        acc |= u64::from(v) << bits;
        bits += width;
        if bits >= 32 {
            out.extend_from_slice(&(acc as u32).to_le_bytes());
            acc >>= 32;
            bits -= 32;
        }
    }
    // 8 values per group make whole bytes.
    out.extend_from_slice(&acc.to_le_bytes()[..(bits / 8) as usize]);
}
