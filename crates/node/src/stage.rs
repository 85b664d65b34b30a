//! The WebAssembly build's streaming stage: a buffer in the module's memory where JS writes a
//! step's x and reads its output through typed-array views on that memory (`stepStage`,
//! `stepStaged`), so that a streaming step passes no typed array through emnapi, which copies
//! every typed-array argument into the module's memory and every returned array out of it
//! (ts/emnapi.ts holds the views). One stage per thread: the JS thread that owns the
//! module's instance is the only one that calls `step`.

use std::cell::RefCell;

use odyssey_core::Error;

use crate::data::ModelFloat;
use crate::error::BindingError;

/// `[x | out]` of the last `stepStage`, in one dtype.
#[derive(Default)]
struct Stage {
    /// Whole 8-byte words, so that the values of either dtype are aligned.
    words: Vec<u64>,
    x_len: usize,
    out_len: usize,
    /// Bytes per value.
    value_size: usize,
}

thread_local! {
    static STAGE: RefCell<Stage> = RefCell::default();
}

/// Makes the stage hold `x_len` then `out_len` values of `F` and returns its address in the
/// module's memory (x's first value; out follows x). The address of the last stage stops
/// being valid.
pub(crate) fn stage<F: ModelFloat>(x_len: usize, out_len: usize) -> usize {
    STAGE.with_borrow_mut(|stage| {
        let size = std::mem::size_of::<F>();
        let words = ((x_len + out_len) * size).div_ceil(8);
        if stage.words.len() < words {
            stage.words = vec![0; words];
        }
        *stage = Stage {
            words: std::mem::take(&mut stage.words),
            x_len,
            out_len,
            value_size: size,
        };
        stage.words.as_ptr() as usize
    })
}

/// Runs `body(x, out)` on the stage's values, which must be of `F` (the stage the caller made).
pub(crate) fn with_stage<F: ModelFloat, T>(
    body: impl FnOnce(&[F], &mut [F]) -> Result<T, BindingError>,
) -> Result<T, BindingError> {
    STAGE.with_borrow_mut(|stage| {
        if stage.value_size != std::mem::size_of::<F>() {
            return Err(Error::invalid(
                "stepStaged",
                format!("needs a stage of {} values (stepStage)", F::ARRAY_NAME),
            )
            .into());
        }
        // SAFETY: `stage` made `words` hold at least `x_len + out_len` values of `F` (its
        // `value_size`), 8-byte aligned, every bit pattern of which is a float; the slices
        // borrow `words` mutably for the call, and do not overlap.
        let (x, out) = unsafe {
            let values = stage.words.as_mut_ptr().cast::<F>();
            (
                std::slice::from_raw_parts(values, stage.x_len),
                std::slice::from_raw_parts_mut(values.add(stage.x_len), stage.out_len),
            )
        };
        body(x, out)
    })
}
