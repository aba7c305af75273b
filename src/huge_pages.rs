//! Large output buffers on transparent huge pages, as numpy backs its large arrays: where the kernel offers them
//! only on request (`/sys/kernel/mm/transparent_hugepage/enabled` = `madvise`, the common default), a dense output
//! (a bar per trade) otherwise spends more time in 4 KiB page faults than in the kernel that fills it.

/// Buffers smaller than this keep ordinary pages.
const MIN_BYTES: usize = HUGE_PAGE;
/// The huge page size on x86-64 and most aarch64 kernels; only whole, aligned ones can be huge.
const HUGE_PAGE: usize = 2 << 20;

/// `v.reserve(additional)`, then asks the OS to back the unused capacity with huge pages when it is large.
///
/// The request is advice: the contents and the allocation are unchanged, and where huge pages are off or not
/// supported nothing happens.
pub fn reserve<T>(v: &mut Vec<T>, additional: usize) {
    let before = v.capacity();
    v.reserve(additional);
    // Only a new allocation needs the advice (a reservation that fits asks again for nothing).
    if v.capacity() != before {
        advise(v);
    }
}

/// An empty vector with room for `capacity` values, on huge pages when it is large (see [`reserve`]).
#[must_use]
pub fn with_capacity<T>(capacity: usize) -> Vec<T> {
    let mut v = Vec::new();
    reserve(&mut v, capacity);
    v
}

#[cfg(target_os = "linux")]
fn advise<T>(v: &mut Vec<T>) {
    let spare = v.spare_capacity_mut();
    let bytes = std::mem::size_of_val(spare);
    if bytes < MIN_BYTES {
        return;
    }
    let start = spare.as_mut_ptr() as usize;
    let first = start.next_multiple_of(HUGE_PAGE);
    let end = (start + bytes) / HUGE_PAGE * HUGE_PAGE;
    if end <= first {
        return;
    }
    // SAFETY: `first..end` lies inside this vector's own allocation (its unused capacity), so no other object's
    // pages are affected; MADV_HUGEPAGE only changes how the kernel backs the pages, never their contents, and a
    // failure (huge pages disabled) leaves ordinary pages.
    unsafe {
        libc::madvise(first as *mut libc::c_void, end - first, libc::MADV_HUGEPAGE);
    }
}

#[cfg(not(target_os = "linux"))]
fn advise<T>(_v: &mut Vec<T>) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserve_keeps_contents_and_makes_room() {
        let mut v: Vec<i64> = (0..10).collect();
        reserve(&mut v, 1 << 20);
        assert!(v.capacity() >= 10 + (1 << 20));
        v.extend(10..(1 << 20));
        assert!(v.iter().enumerate().all(|(i, &x)| x == i as i64));
        let w: Vec<u8> = with_capacity(8 << 20);
        assert!(w.is_empty() && w.capacity() >= 8 << 20);
    }
}
