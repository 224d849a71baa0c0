//! The fused CPU op's allocator.
//!
//! Large `f32` buffers kept between calls (packed weights, saved gates, gradient scratch), so a
//! training step does not map, and fault in, fresh pages for each: glibc hands large freed blocks
//! back to the kernel, and a long sequence's training step needs gigabytes of them.
//!
//! The pool keeps at most the larger of [`MIN_KEEP`] and the most it has ever had handed
//! out at once (its callers' peak working set), so a training loop's steady state maps nothing
//! new and the memory held never exceeds what one step needed anyway. [`release`]
//! (public as `gatecast_model::release_cached_buffers`) frees it all.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};

struct Pool {
    /// Returned buffers, oldest first.
    free: VecDeque<Vec<f32>>,
    /// Bytes in `free`.
    held: usize,
    /// Bytes handed out by [`take`] and not yet returned.
    out: usize,
    /// The largest `out` seen: the cap on `held` (with [`MIN_KEEP`]).
    peak: usize,
}

static POOL: Mutex<Pool> = Mutex::new(Pool::new());
/// What the pool may hold even before it has seen a peak.
pub(crate) const MIN_KEEP: usize = 256 << 20;

fn pool() -> MutexGuard<'static, Pool> {
    POOL.lock().unwrap_or_else(|e| e.into_inner())
}

impl Pool {
    const fn new() -> Self {
        Self {
            free: VecDeque::new(),
            held: 0,
            out: 0,
            peak: 0,
        }
    }

    /// The smallest kept buffer of at least `len` values and at most a quarter more (or
    /// 1 MiB), counted as handed out either way. A much larger leftover of one model served to
    /// a smaller request of the next slowed that model's steps for the life of the process
    /// (the cause is not pinned down), so kept buffers serve only requests close to their size.
    fn take(&mut self, len: usize) -> Option<Vec<f32>> {
        let fits =
            |v: &Vec<f32>| v.capacity() >= len && v.capacity() <= (len + len / 4).max(1 << 18);
        let best = (0..self.free.len())
            .filter(|&i| fits(&self.free[i]))
            .min_by_key(|&i| self.free[i].capacity());
        let found = best.and_then(|i| self.free.remove(i));
        if let Some(v) = &found {
            self.held -= v.capacity() * 4;
        }
        self.out += found.as_ref().map_or(len, |v| v.capacity()) * 4;
        self.peak = self.peak.max(self.out);
        found
    }

    /// Keeps `v`, dropping the oldest kept buffers while more than the cap would be held.
    fn give(&mut self, v: Vec<f32>) {
        let bytes = v.capacity() * 4;
        if bytes == 0 {
            return;
        }
        self.out = self.out.saturating_sub(bytes);
        let cap = self.peak.max(MIN_KEEP);
        if bytes > cap {
            return;
        }
        while self.held + bytes > cap {
            let Some(old) = self.free.pop_front() else {
                break;
            };
            self.held -= old.capacity() * 4;
        }
        self.held += bytes;
        self.free.push_back(v);
    }

    /// Drops every kept buffer and lowers the peak to what is handed out now.
    fn release(&mut self) -> VecDeque<Vec<f32>> {
        self.held = 0;
        self.peak = self.out;
        std::mem::take(&mut self.free)
    }
}

/// `len` values, contents unspecified: callers write every value they later read.
pub(crate) fn take(len: usize) -> Vec<f32> {
    if len == 0 {
        return Vec::new();
    }
    let found = pool().take(len);
    match found {
        Some(mut v) => {
            v.truncate(len);
            v.resize(len, 0.0);
            v
        }
        None => fresh(len),
    }
}

/// Buffers at least this large are mapped with transparent huge pages where the kernel
/// allows it (`madvise` mode).
const HUGE_BYTES: usize = 8 << 20;

/// `len` zeros from the allocator. Above [`HUGE_BYTES`] the allocation (usually a fresh
/// `mmap`: untouched zero pages) is advised `MADV_HUGEPAGE` before its first write, so first
/// touch faults in 2 MiB at a time instead of 4 KiB: a long sequence's saved gates are hundreds
/// of megabytes per layer, i.e. hundreds of thousands of 4 KiB faults. (Where glibc serves the
/// request from its heap instead, the advice covers pages it may already have touched:
/// harmless.)
pub(crate) fn fresh(len: usize) -> Vec<f32> {
    let v = vec![0.0f32; len];
    #[cfg(target_os = "linux")]
    if len * 4 >= HUGE_BYTES {
        const HUGE: usize = 2 << 20;
        let start = (v.as_ptr() as usize).next_multiple_of(HUGE);
        let end = (v.as_ptr() as usize + len * 4) / HUGE * HUGE;
        if end > start {
            // SAFETY: advice on whole pages inside this live allocation; it changes how
            // they are backed, never their contents (all zero, as `vec!` made them).
            unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE) };
        }
    }
    v
}

/// `len` zeros.
pub(crate) fn zeros(len: usize) -> Vec<f32> {
    let mut v = take(len);
    v.fill(0.0);
    v
}

/// Returns `v` (from [`take`]) to the pool.
pub(crate) fn give(v: Vec<f32>) {
    pool().give(v);
}

/// Frees every kept buffer and forgets the peak.
pub(crate) fn release() {
    let dropped = pool().release();
    drop(dropped);
}

/// A [`take`]n buffer that goes back to the pool when dropped (e.g. the gates an autodiff
/// graph saved but never ran backward on).
#[derive(Debug, Default)]
pub(crate) struct Pooled(pub(crate) Vec<f32>);

impl Drop for Pooled {
    fn drop(&mut self) {
        give(std::mem::take(&mut self.0));
    }
}

impl Clone for Pooled {
    fn clone(&self) -> Self {
        let mut v = take(self.0.len());
        v.copy_from_slice(&self.0);
        Self(v)
    }
}

impl std::ops::Deref for Pooled {
    type Target = Vec<f32>;
    fn deref(&self) -> &Vec<f32> {
        &self.0
    }
}

impl std::ops::DerefMut for Pooled {
    fn deref_mut(&mut self) -> &mut Vec<f32> {
        &mut self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: usize = 1 << 18; // f32 values per MiB

    /// The pool holds up to its callers' peak (at least `MIN_KEEP`), reuses a kept buffer
    /// only for a request of at least 4/5 of its size, drops the oldest first, and frees
    /// everything on `release`.
    #[test]
    fn keeps_up_to_the_peak_working_set() {
        let mut p = Pool::new();
        // MIN_KEEP's worth of values.
        let min = MIN_KEEP / 4;
        // Three buffers out at once: 1.5 × MIN_KEEP in all.
        let bufs: Vec<Vec<f32>> = (0..3)
            .map(|_| p.take(min / 2).unwrap_or_else(|| vec![0.0; min / 2]))
            .collect();
        assert_eq!(p.peak, 3 * MIN_KEEP / 2);
        for v in bufs {
            p.give(v);
        }
        assert_eq!((p.held, p.out), (3 * MIN_KEEP / 2, 0), "all three kept");
        // Not reused for a much smaller request.
        let small = p.take(min / 8);
        assert!(
            small.is_none(),
            "a 4x larger buffer must not serve a small request"
        );
        // Kept in place of the oldest: 1.5 × MIN_KEEP is the cap.
        p.give(vec![0.0; min / 8]);
        assert_eq!(p.held, MIN_KEEP + MIN_KEEP / 8);
        assert!(p.take(min / 3).is_none(), "1.5x larger: not reused");
        p.give(vec![0.0; min / 3]);
        let held = MIN_KEEP + MIN_KEEP / 8 + (min / 3) * 4;
        assert_eq!(p.held, held, "under the cap: nothing dropped");
        // At most a quarter larger: reused.
        let v = p.take(min / 2 - 1024).expect("a kept buffer fits");
        assert_eq!(v.capacity(), min / 2);
        assert_eq!(p.held, held - MIN_KEEP / 2);
        p.give(v);
        // Over the cap the oldest go first: one buffer of the peak's size displaces all.
        p.give(vec![0.0; 3 * min / 2]);
        assert_eq!(p.held, 3 * MIN_KEEP / 2);
        assert_eq!(p.free.len(), 1);
        // Larger than the cap: not kept.
        p.give(vec![0.0; 2 * min]);
        assert_eq!(p.held, 3 * MIN_KEEP / 2);
        let freed = p.release();
        assert_eq!((freed.len(), p.held, p.peak), (1, 0, 0));
        // Without a peak, MIN_KEEP is the cap.
        p.give(vec![0.0; min / 2 + MIB]);
        p.give(vec![0.0; min / 2 + MIB]);
        assert_eq!(p.free.len(), 1, "two would exceed MIN_KEEP");
    }
}
