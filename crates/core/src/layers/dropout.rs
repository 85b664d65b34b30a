//! Inverted dropout: in training each element is zeroed with probability
//! `rate` and the survivors are scaled by 1 / (1 − rate), so that evaluation
//! is the identity and the expected activation is the same in both modes.

use ndarray::{Array, ArrayView, Dimension};
use rand::distributions::{Bernoulli, Distribution};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::{Error, Result, Scalar};

/// A dropout layer with its own seeded random stream: the same seed gives the
/// same sequence of masks, independently of any other layer.
#[derive(Debug, Clone)]
pub struct Dropout {
    rate: f64,
    keep: Bernoulli,
    rng: ChaCha8Rng,
}

/// The mask of one training forward pass, for backward.
#[derive(Debug, Clone)]
pub struct DropoutCache<F, D: Dimension> {
    /// 0 or 1 / (1 − rate) per element; `None` when the forward pass was the identity.
    mask: Option<Array<F, D>>,
}

impl Dropout {
    /// `rate` ∈ [0, 1]: the probability of zeroing an element (1 zeroes everything).
    pub fn new(rate: f64, seed: u64) -> Result<Self> {
        let keep = Bernoulli::new(1.0 - rate)
            .map_err(|_| Error::invalid("rate", format!("must be in [0, 1], got {rate}")))?;
        Ok(Dropout {
            rate,
            keep,
            rng: ChaCha8Rng::seed_from_u64(seed),
        })
    }

    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// `x`: any shape. `training == false` (evaluation) or a zero rate is the
    /// identity and draws no random numbers.
    pub fn forward<F: Scalar, D: Dimension>(
        &mut self,
        x: ArrayView<'_, F, D>,
        training: bool,
    ) -> (Array<F, D>, DropoutCache<F, D>) {
        if !training || self.rate == 0.0 {
            return (x.to_owned(), DropoutCache { mask: None });
        }
        // rate = 1 never keeps, so the infinite scale is never used.
        let scale = F::from_f64_lossy(1.0 / (1.0 - self.rate));
        let mask = Array::from_shape_simple_fn(x.raw_dim(), || {
            if self.keep.sample(&mut self.rng) {
                scale
            } else {
                F::zero()
            }
        });
        (&x * &mask, DropoutCache { mask: Some(mask) })
    }

    /// `dy`: ∂J/∂output, the forward input's shape. ∂J/∂x = dy ⊙ mask.
    pub fn backward<F: Scalar, D: Dimension>(
        &self,
        cache: &DropoutCache<F, D>,
        dy: ArrayView<'_, F, D>,
    ) -> Result<Array<F, D>> {
        match &cache.mask {
            None => Ok(dy.to_owned()),
            Some(mask) if mask.shape() != dy.shape() => {
                let expected = format!("{:?} (the forward input's shape)", mask.shape());
                Err(Error::shape("dy", expected, dy.shape()))
            }
            Some(mask) => Ok(&dy * mask),
        }
    }
}
