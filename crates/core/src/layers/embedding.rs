//! Token embedding: PyTorch's `nn.Embedding`, a lookup of rows of a
//! `[vocab_size, dim]` table. Token ids `[batch, time]` are flattened to
//! `[batch·time]` by the caller.

use ndarray::{Array2, ArrayView2, ArrayViewD, ArrayViewMutD, Axis};
use rand::Rng;
use rand_distr::StandardNormal;

use crate::{Error, ParamSet, Result, Scalar};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmbeddingConfig {
    pub vocab_size: usize,
    pub dim: usize,
    /// A frozen table (e.g. pretrained GloVe vectors) receives no gradient.
    pub frozen: bool,
}

impl EmbeddingConfig {
    pub fn validate(&self) -> Result<()> {
        for (name, size) in [("vocabSize", self.vocab_size), ("dim", self.dim)] {
            if size == 0 {
                return Err(Error::invalid(name, "must be >= 1, got 0"));
            }
        }
        Ok(())
    }
}

/// The table (and, with the same type, its gradient), named like `nn.Embedding`.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbeddingParams<F> {
    /// `weight`: `[vocab_size, dim]`
    pub weight: Array2<F>,
}

impl<F: Scalar> ParamSet<F> for EmbeddingParams<F> {
    fn tensors(&self) -> Vec<(&'static str, ArrayViewD<'_, F>)> {
        vec![("weight", self.weight.view().into_dyn())]
    }

    fn tensors_mut(&mut self) -> Vec<(&'static str, ArrayViewMutD<'_, F>)> {
        vec![("weight", self.weight.view_mut().into_dyn())]
    }
}

#[derive(Debug, Clone)]
pub struct Embedding<F> {
    pub config: EmbeddingConfig,
    pub params: EmbeddingParams<F>,
}

impl<F: Scalar> Embedding<F> {
    /// PyTorch's initialisation: every entry N(0, 1).
    pub fn new<R: Rng>(config: EmbeddingConfig, rng: &mut R) -> Result<Self> {
        config.validate()?;
        let weight = Array2::from_shape_fn((config.vocab_size, config.dim), |_| {
            F::from_f64_lossy(rng.sample::<f64, _>(StandardNormal))
        });
        Ok(Embedding {
            config,
            params: EmbeddingParams { weight },
        })
    }

    /// A layer over a given table (pretrained vectors, a checkpoint), shape-checked against `config`.
    pub fn from_params(config: EmbeddingConfig, params: EmbeddingParams<F>) -> Result<Self> {
        config.validate()?;
        let expected = (config.vocab_size, config.dim);
        if params.weight.dim() != expected {
            return Err(Error::shape(
                "weight",
                format!("{expected:?}"),
                params.weight.shape(),
            ));
        }
        Ok(Embedding { config, params })
    }

    /// Whether the optimizer should see this layer's parameters. A frozen
    /// table must be left out of the optimizer's parameter list: weight decay
    /// would otherwise change it even with a zero gradient.
    pub fn trainable(&self) -> bool {
        !self.config.frozen
    }

    /// `indices`: `[rows]` token ids, each `< vocab_size` → `[rows, dim]`.
    pub fn forward(&self, indices: &[u32]) -> Result<Array2<F>> {
        self.check_indices(indices)?;
        let rows: Vec<usize> = indices.iter().map(|&i| i as usize).collect();
        Ok(self.params.weight.select(Axis(0), &rows))
    }

    /// `dy`: ∂J/∂output `[rows, dim]`. Returns ∂J/∂weight `[vocab_size, dim]`
    /// (row v is the sum of dy over the rows whose index is v), or `None` for
    /// a frozen table. There is no input gradient: indices are not differentiable.
    pub fn backward(
        &self,
        indices: &[u32],
        dy: ArrayView2<'_, F>,
    ) -> Result<Option<EmbeddingParams<F>>> {
        self.check_indices(indices)?;
        if dy.dim() != (indices.len(), self.config.dim) {
            let expected = format!("[{}, {}]", indices.len(), self.config.dim);
            return Err(Error::shape("dy", expected, dy.shape()));
        }
        if self.config.frozen {
            return Ok(None);
        }
        let mut weight = Array2::zeros(self.params.weight.raw_dim());
        for (&index, row) in indices.iter().zip(dy.rows()) {
            weight.row_mut(index as usize).scaled_add(F::one(), &row);
        }
        Ok(Some(EmbeddingParams { weight }))
    }

    fn check_indices(&self, indices: &[u32]) -> Result<()> {
        let vocab = self.config.vocab_size;
        match indices
            .iter()
            .enumerate()
            .find(|(_, &i)| i as usize >= vocab)
        {
            Some((position, &index)) => Err(Error::invalid(
                &format!("indices[{position}]"),
                format!("token id {index} is out of range for a vocabulary of {vocab}"),
            )),
            None => Ok(()),
        }
    }
}
