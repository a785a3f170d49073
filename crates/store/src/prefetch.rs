//! Software prefetch for the flush's walks over the frozen hot tier.
//!
//! A flush reaches a million spans, each through a pointer (`Arc<Span>`)
//! and again through its attribute array, in an order unrelated to where
//! they were allocated: every step is a cache miss the CPU cannot foresee,
//! since the address comes from the miss before. Asking for the memory of
//! a row some rows ahead overlaps those misses (measured in
//! docs/BENCHMARKS.md, "Prefetching the frozen hot tier").

use tracewarden_model::{AnyValue, KeyValue};

/// Asks the CPU to start loading the cache line at `p`. A hint only: it
/// never faults, whatever `p` is, and does nothing off x86-64.
#[inline(always)]
pub(crate) fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    #[allow(unsafe_code)]
    // SAFETY: `_mm_prefetch` needs SSE, which every x86-64 CPU has (it is
    // in the target's baseline), and PREFETCHT0 does not access memory
    // architecturally: an invalid address is ignored, not faulted on.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Cache lines of x86-64 (a hint's granularity; elsewhere a hint is nothing).
const LINE: usize = 64;

/// Asks for every cache line of `value`. A span is ~250 bytes, four or five
/// lines, and the walks read fields on each of them: its attribute, event
/// and link arrays at one end, its ids and times at the other. Fetching
/// only the first line left the others to miss in turn. A slice works too:
/// an attribute array of ten is ~560 bytes, nine lines, and the row
/// building reads each attribute's key and value.
#[inline(always)]
pub(crate) fn prefetch_whole<T: ?Sized>(value: &T) {
    let start = (value as *const T).cast::<u8>();
    let size = std::mem::size_of_val(value);
    let mut offset = 0;
    while offset < size {
        prefetch(start.wrapping_add(offset));
        offset += LINE;
    }
    // The last line, when `value` does not start on a line's boundary.
    if size > 0 {
        prefetch(start.wrapping_add(size - 1));
    }
}

/// Prefetches the heap buffers of the attributes' string values (short
/// strings are held in place and need nothing).
#[inline]
pub(crate) fn prefetch_strings(attributes: &[KeyValue]) {
    for kv in attributes {
        if let AnyValue::Str(value) = &kv.value
            && value.is_heap_allocated()
        {
            prefetch(value.as_ptr());
        }
    }
}
