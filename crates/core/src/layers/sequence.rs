//! What every recurrent layer takes and gives: a padded batch of sequences
//! with per-sequence lengths and an optional initial state.

use ndarray::{Array2, Array3, ArrayView2, ArrayView3};

use crate::{Error, Result, Scalar};

/// A padded batch of sequences.
///
/// Steps `t >= lengths[b]` of sequence `b` are padding: they neither change
/// its state nor receive gradient, and their outputs are zero.
#[derive(Debug, Clone, Copy)]
pub struct SequenceBatch<'a, F> {
    /// `[batch, time, input_size]`
    pub x: ArrayView3<'a, F>,
    /// `[batch]`, each in `1..=time`; `None` means every sequence is `time` long.
    pub lengths: Option<&'a [usize]>,
    /// Initial hidden output y(0): `[batch, hidden_size]`; zeros when `None`.
    pub h0: Option<ArrayView2<'a, F>>,
    /// Initial cell state c(0): `[batch, hidden_size]`; zeros when `None`.
    /// Ignored by the simple RNN.
    pub c0: Option<ArrayView2<'a, F>>,
}

impl<'a, F: Scalar> SequenceBatch<'a, F> {
    pub fn new(x: ArrayView3<'a, F>) -> Self {
        SequenceBatch {
            x,
            lengths: None,
            h0: None,
            c0: None,
        }
    }

    /// `[batch, time, input_size]`
    pub fn dims(&self) -> (usize, usize, usize) {
        self.x.dim()
    }

    /// Length of sequence `b` (the full time axis when no lengths were given).
    pub fn length(&self, b: usize) -> usize {
        self.lengths.map_or(self.x.dim().1, |l| l[b])
    }

    /// Checks `x`'s input size, the lengths and the initial-state shapes.
    pub fn validate(&self, input_size: usize, hidden_size: usize) -> Result<()> {
        let (batch, time, features) = self.x.dim();
        if batch == 0 || time == 0 || features != input_size {
            return Err(Error::shape(
                "x",
                format!("[batch >= 1, time >= 1, {input_size}]"),
                self.x.shape(),
            ));
        }
        if let Some(lengths) = self.lengths {
            if lengths.len() != batch {
                return Err(Error::shape(
                    "lengths",
                    format!("[{batch}]"),
                    &[lengths.len()],
                ));
            }
            if let Some((index, &value)) = lengths
                .iter()
                .enumerate()
                .find(|(_, &l)| l == 0 || l > time)
            {
                return Err(Error::Length {
                    index,
                    value,
                    max: time,
                });
            }
        }
        for (name, state) in [("h0", self.h0), ("c0", self.c0)] {
            if let Some(s) = state {
                if s.dim() != (batch, hidden_size) {
                    return Err(Error::shape(
                        name,
                        format!("[{batch}, {hidden_size}]"),
                        s.shape(),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// What a recurrent layer's forward pass returns.
#[derive(Debug, Clone)]
pub struct SequenceOutput<F> {
    /// Outputs y(t) for every step: `[batch, time, hidden_size]`; zero at padded steps.
    pub y: Array3<F>,
    /// Final hidden output y(T_b) of each sequence at its own length: `[batch, hidden_size]`.
    pub h_n: Array2<F>,
    /// Final cell state c(T_b): `[batch, hidden_size]` (LSTM; `None` for the simple RNN).
    pub c_n: Option<Array2<F>>,
}

/// Options of a backward pass through time.
#[derive(Debug, Clone, Copy, Default)]
pub struct BackwardOptions<F> {
    /// Clip the error flowing back through the recurrence at every time step:
    /// each element of δy(t) (and, for the LSTM, δc(t)) is clamped to
    /// `[-v, v]` before it is propagated to step t-1 (Graves 2013 style).
    pub recurrent_clip: Option<F>,
}

impl<F: Scalar> BackwardOptions<F> {
    /// The recurrent clip, checked: a finite number > 0 (the rule every layer's backward and
    /// the trainer apply).
    pub fn checked_recurrent_clip(&self) -> Result<Option<F>> {
        match self.recurrent_clip {
            Some(v) if !(v.is_finite() && v > F::zero()) => Err(Error::invalid(
                "recurrentClip",
                format!("must be a finite number > 0, got {v}"),
            )),
            clip => Ok(clip),
        }
    }
}
