//! The recycling allocator, installed as this test binary's global allocator.

use std::sync::Mutex;

use odyssey_core::alloc::{RecyclingAllocator, MAX_CACHED_BYTES, MIN_BLOCK};

#[global_allocator]
static ALLOCATOR: RecyclingAllocator = RecyclingAllocator::new();

/// The cache is process-wide: the tests take turns.
static SERIAL: Mutex<()> = Mutex::new(());

#[test]
fn a_freed_large_block_is_handed_back_for_the_same_size() {
    let _turn = SERIAL.lock().unwrap();
    ALLOCATOR.release();
    let first = vec![1.0f32; MIN_BLOCK];
    let address = first.as_ptr();
    drop(first);
    assert_eq!(ALLOCATOR.cached_bytes(), 4 * MIN_BLOCK);
    let second = vec![2.0f32; MIN_BLOCK];
    assert_eq!(second.as_ptr(), address);
    assert_eq!(ALLOCATOR.cached_bytes(), 0);
}

#[test]
fn a_reused_block_asked_for_zeroed_is_zeroed() {
    let _turn = SERIAL.lock().unwrap();
    ALLOCATOR.release();
    drop(vec![0xAAu8; 2 * MIN_BLOCK]);
    let zeros = vec![0u8; 2 * MIN_BLOCK];
    assert_eq!(ALLOCATOR.cached_bytes(), 0, "the cached block was reused");
    assert!(zeros.iter().all(|&b| b == 0));
}

#[test]
fn small_blocks_and_other_sizes_are_not_kept_or_confused() {
    let _turn = SERIAL.lock().unwrap();
    ALLOCATOR.release();
    drop(vec![0u8; MIN_BLOCK - 1]);
    assert_eq!(ALLOCATOR.cached_bytes(), 0);
    drop(vec![0u8; MIN_BLOCK]);
    let other = vec![7u8; MIN_BLOCK + 1];
    assert_eq!(
        ALLOCATOR.cached_bytes(),
        MIN_BLOCK,
        "a block of another size is not reused"
    );
    assert!(other.iter().all(|&b| b == 7));
}

#[test]
fn the_cache_stays_under_its_cap_by_evicting_the_oldest_blocks() {
    let _turn = SERIAL.lock().unwrap();
    ALLOCATOR.release();
    let third = MAX_CACHED_BYTES / 3 + 1;
    let blocks: Vec<Vec<u8>> = (0..3).map(|_| vec![0u8; third]).collect();
    let first = blocks[0].as_ptr();
    drop(blocks);
    assert_eq!(
        ALLOCATOR.cached_bytes(),
        2 * third,
        "the first block was evicted for the third"
    );
    let again = vec![0u8; third];
    assert_ne!(again.as_ptr(), first);
    drop(again);
    ALLOCATOR.release();
    assert_eq!(ALLOCATOR.cached_bytes(), 0);
}

#[test]
fn growing_a_vector_across_the_threshold_keeps_its_contents() {
    let _turn = SERIAL.lock().unwrap();
    let mut values: Vec<u32> = (0..1000).collect();
    for k in 1000..(MIN_BLOCK as u32) {
        values.push(k);
    }
    assert!(values.iter().enumerate().all(|(k, &v)| v == k as u32));
}
