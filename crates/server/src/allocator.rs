//! The binary's global allocator: mimalloc, asked the way `std`'s own `System` allocator
//! asks `malloc`.
//!
//! The `mimalloc` crate's allocator passes every layout to `mi_malloc_aligned`. In
//! mimalloc 3 that call has a fast path only for a size class whose next free block
//! happens to be aligned; otherwise (every block over 1 KiB, and any size class whose page
//! has just run out) it over-allocates and aligns by hand. Callgrind counted one and a
//! half such calls per redirect at about 225 instructions each. A plain `mi_malloc` block
//! is aligned to 16 bytes, or to its size below that, so layouts that ask no more are
//! served by `mi_malloc`, as `std` serves them by `malloc`.

use libmimalloc_sys::{mi_free, mi_malloc, mi_malloc_aligned, mi_realloc, mi_realloc_aligned};
use libmimalloc_sys::{mi_zalloc, mi_zalloc_aligned};
use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

/// What every `mi_malloc` block is aligned to, when it is at least this large
/// (mimalloc's `MI_MAX_ALIGN_SIZE`).
const PLAIN_ALIGN: usize = 16;

/// mimalloc, without its aligned entry points for layouts its plain ones already satisfy.
pub struct MiMalloc;

/// Whether a block of `size` bytes from `mi_malloc` is aligned enough for `align`.
fn plain(align: usize, size: usize) -> bool {
    align <= PLAIN_ALIGN && align <= size
}

// SAFETY: every block comes from mimalloc and goes back to it (`mi_free` takes blocks from
// any of its entry points); a block from `mi_malloc`, `mi_zalloc` or `mi_realloc` is used
// only where `plain` says its alignment suffices.
unsafe impl GlobalAlloc for MiMalloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: mimalloc's allocation functions accept any size and power-of-two alignment.
        unsafe {
            if plain(layout.align(), layout.size()) {
                mi_malloc(layout.size()).cast()
            } else {
                mi_malloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        unsafe {
            if plain(layout.align(), layout.size()) {
                mi_zalloc(layout.size()).cast()
            } else {
                mi_zalloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: `ptr` came from this allocator, so from mimalloc.
        unsafe { mi_free(ptr.cast::<c_void>()) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from mimalloc; the new block keeps the layout's alignment.
        unsafe {
            if plain(layout.align(), new_size) {
                mi_realloc(ptr.cast::<c_void>(), new_size).cast()
            } else {
                mi_realloc_aligned(ptr.cast::<c_void>(), new_size, layout.align()).cast()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Blocks of every size class up to 64 KiB, at every alignment up to 4 KiB, are
    /// aligned, keep what was written through a `realloc`, and come back zeroed when asked.
    #[test]
    fn blocks_are_aligned_and_keep_their_contents() {
        let sizes = (0..17).flat_map(|shift| {
            let size = 1usize << shift;
            [size - 1, size, size + 1, size * 3 / 2]
        });
        for size in sizes.filter(|&s| s > 0) {
            for align in (0..13).map(|shift| 1usize << shift) {
                let layout = Layout::from_size_align(size, align).unwrap();
                // SAFETY: the layout has a non-zero size; each block is freed once, with it.
                unsafe {
                    let zeroed = MiMalloc.alloc_zeroed(layout);
                    assert!(!zeroed.is_null());
                    assert_eq!(zeroed as usize % align, 0, "zeroed {size} at {align}");
                    assert!(
                        std::slice::from_raw_parts(zeroed, size)
                            .iter()
                            .all(|&b| b == 0)
                    );
                    MiMalloc.dealloc(zeroed, layout);

                    let block = MiMalloc.alloc(layout);
                    assert!(!block.is_null());
                    assert_eq!(block as usize % align, 0, "{size} at {align}");
                    for i in 0..size {
                        *block.add(i) = i as u8;
                    }
                    let grown = MiMalloc.realloc(block, layout, size * 2 + 1);
                    assert_eq!(grown as usize % align, 0, "grown {size} at {align}");
                    assert!((0..size).all(|i| *grown.add(i) == i as u8));
                    let grown_layout = Layout::from_size_align(size * 2 + 1, align).unwrap();
                    let shrunk = MiMalloc.realloc(grown, grown_layout, size.div_ceil(2));
                    assert_eq!(shrunk as usize % align, 0, "shrunk {size} at {align}");
                    assert!((0..size.div_ceil(2)).all(|i| *shrunk.add(i) == i as u8));
                    let shrunk_layout = Layout::from_size_align(size.div_ceil(2), align).unwrap();
                    MiMalloc.dealloc(shrunk, shrunk_layout);
                }
            }
        }
    }
}
