//! A global allocator that recycles large blocks between training steps.
//!
//! Every training step allocates the same large buffers (the gate
//! pre-activations `[time·batch, 4H]`, the saved states, their gradients) and
//! frees them at its end. With the system allocator each of those blocks is
//! fresh `mmap`ped (or freshly trimmed heap) memory, and the kernel faults in
//! and zeroes every page on first touch: measured, about a quarter of an S2
//! training step (`examples/bench_lstm.rs`). [`RecyclingAllocator`] keeps
//! freed blocks of at least [`MIN_BLOCK`] bytes, up to [`MAX_CACHED_BYTES`]
//! in all, and hands one back when a block of exactly the same size and
//! alignment is asked for again, which in a training loop is nearly always.
//! Everything smaller goes straight to the system allocator.
//!
//! Install it in a binary or addon with
//! `#[global_allocator] static ALLOC: RecyclingAllocator = RecyclingAllocator::new();`
//! and call [`RecyclingAllocator::release`] when the training is over.

use std::alloc::{GlobalAlloc, Layout, System};
use std::ptr::NonNull;
use std::sync::{Mutex, MutexGuard};

/// Blocks smaller than this are not worth keeping (the system allocator reuses them well).
pub const MIN_BLOCK: usize = 256 * 1024;
/// The most bytes kept for reuse; beyond it the oldest blocks are returned to the system.
pub const MAX_CACHED_BYTES: usize = 512 * 1024 * 1024;
/// The most blocks kept (the lookup is a linear scan).
const SLOTS: usize = 64;

#[derive(Clone, Copy)]
struct Block {
    ptr: NonNull<u8>,
    layout: Layout,
    /// When it was cached: the oldest block is evicted first.
    age: u64,
}

struct BlockCache {
    slots: [Option<Block>; SLOTS],
    bytes: usize,
    clock: u64,
}

// SAFETY: the cache only stores pointers to blocks nobody else references (freed by their owner).
unsafe impl Send for BlockCache {}

impl BlockCache {
    /// Removes and returns a block of exactly `layout`.
    fn take(&mut self, layout: Layout) -> Option<NonNull<u8>> {
        let slot = self
            .slots
            .iter_mut()
            .find(|s| s.is_some_and(|b| b.layout == layout))?;
        let block = slot.take()?;
        self.bytes -= block.layout.size();
        Some(block.ptr)
    }

    /// Keeps `ptr` (returns false when it is too large to keep), first moving the oldest blocks
    /// into `evicted` until it fits; the caller frees those outside the lock.
    fn put(
        &mut self,
        ptr: NonNull<u8>,
        layout: Layout,
        evicted: &mut [Option<Block>; SLOTS],
    ) -> bool {
        if layout.size() > MAX_CACHED_BYTES {
            return false;
        }
        let mut out = evicted.iter_mut();
        while self.bytes + layout.size() > MAX_CACHED_BYTES
            || self.slots.iter().all(Option::is_some)
        {
            let oldest = self
                .slots
                .iter_mut()
                .filter(|s| s.is_some())
                .min_by_key(|s| s.map_or(u64::MAX, |b| b.age));
            let Some(block) = oldest.and_then(Option::take) else {
                return false;
            };
            self.bytes -= block.layout.size();
            *out.next().expect("at most SLOTS blocks are evicted") = Some(block);
        }
        self.clock += 1;
        let free = self
            .slots
            .iter_mut()
            .find(|s| s.is_none())
            .expect("a slot was freed above");
        *free = Some(Block {
            ptr,
            layout,
            age: self.clock,
        });
        self.bytes += layout.size();
        true
    }
}

/// The global allocator described in the module documentation.
pub struct RecyclingAllocator {
    cache: Mutex<BlockCache>,
}

impl Default for RecyclingAllocator {
    fn default() -> Self {
        Self::new()
    }
}

impl RecyclingAllocator {
    pub const fn new() -> Self {
        RecyclingAllocator {
            cache: Mutex::new(BlockCache {
                slots: [None; SLOTS],
                bytes: 0,
                clock: 0,
            }),
        }
    }

    /// Bytes currently kept for reuse.
    pub fn cached_bytes(&self) -> usize {
        self.lock().bytes
    }

    /// Returns every kept block to the system (e.g. when a model is dropped).
    pub fn release(&self) {
        let blocks = {
            let mut cache = self.lock();
            cache.bytes = 0;
            std::mem::replace(&mut cache.slots, [None; SLOTS])
        };
        free_all(&blocks);
    }

    fn lock(&self) -> MutexGuard<'_, BlockCache> {
        // Nothing panics while holding the lock; a poisoned cache is still consistent.
        self.cache
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn free_all(blocks: &[Option<Block>; SLOTS]) {
    for block in blocks.iter().flatten() {
        // SAFETY: every cached block came from `System` with this layout and is referenced by no one.
        unsafe { System.dealloc(block.ptr.as_ptr(), block.layout) };
    }
}

// SAFETY: blocks are handed out at most once (taken from the cache under its lock) and
// come from `System` with the very layout asked for.
unsafe impl GlobalAlloc for RecyclingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.size() >= MIN_BLOCK {
            if let Some(ptr) = self.lock().take(layout) {
                return ptr.as_ptr();
            }
        }
        // SAFETY: as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if layout.size() >= MIN_BLOCK {
            if let Some(ptr) = self.lock().take(layout) {
                // SAFETY: the block holds `layout.size()` bytes.
                unsafe { ptr.as_ptr().write_bytes(0, layout.size()) };
                return ptr.as_ptr();
            }
        }
        // SAFETY: as the caller's.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if layout.size() >= MIN_BLOCK {
            if let Some(block) = NonNull::new(ptr) {
                // Returned to the system after the lock is released (no allocation under it).
                let mut evicted = [None; SLOTS];
                let kept = self.lock().put(block, layout, &mut evicted);
                free_all(&evicted);
                if kept {
                    return;
                }
            }
        }
        // SAFETY: as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if layout.size() < MIN_BLOCK && new_size < MIN_BLOCK {
            // SAFETY: as the caller's.
            return unsafe { System.realloc(ptr, layout, new_size) };
        }
        // SAFETY: as the caller's; `new_size` with the old alignment is a valid layout.
        unsafe {
            let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
            let new = self.alloc(new_layout);
            if !new.is_null() {
                std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
            new
        }
    }
}
