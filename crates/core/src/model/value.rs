//! The values that flow between the nodes of a model.

use std::sync::Arc;

use ndarray::{Array2, Array3, ArrayD, ArrayViewD};

use crate::{Error, Result, Scalar};

/// A model input or a node's output.
#[derive(Debug, Clone)]
pub enum Value<F> {
    /// `[batch, time, features]` with per-sequence lengths `[batch]`.
    Sequence {
        data: Array3<F>,
        lengths: Arc<[usize]>,
    },
    /// Token ids `[batch, time]` with per-sequence lengths `[batch]`.
    Tokens {
        ids: Array2<u32>,
        lengths: Arc<[usize]>,
    },
    /// `[batch, features]`
    Vector(Array2<F>),
}

impl<F: Scalar> Value<F> {
    pub fn batch(&self) -> usize {
        match self {
            Value::Sequence { data, .. } => data.dim().0,
            Value::Tokens { ids, .. } => ids.dim().0,
            Value::Vector(v) => v.dim().0,
        }
    }

    /// `[batch, time, features]`, `[batch, time]` or `[batch, features]`.
    pub fn shape(&self) -> &[usize] {
        match self {
            Value::Sequence { data, .. } => data.shape(),
            Value::Tokens { ids, .. } => ids.shape(),
            Value::Vector(v) => v.shape(),
        }
    }

    pub fn lengths(&self) -> Option<&Arc<[usize]>> {
        match self {
            Value::Sequence { lengths, .. } | Value::Tokens { lengths, .. } => Some(lengths),
            Value::Vector(_) => None,
        }
    }

    /// A standard-layout copy of the float data (tokens have none).
    pub fn float_data(&self, node: &str) -> Result<ArrayD<F>> {
        Ok(self.float_view(node)?.as_standard_layout().into_owned())
    }

    /// The float data in standard layout, moved out (copied only when it is not in standard layout).
    pub fn into_float_data(self, node: &str) -> Result<ArrayD<F>> {
        let data = match self {
            Value::Sequence { data, .. } => data.into_dyn(),
            Value::Vector(v) => v.into_dyn(),
            Value::Tokens { .. } => {
                return Err(Error::invalid(node, "expects float input, got token ids"))
            }
        };
        Ok(if data.is_standard_layout() {
            data
        } else {
            data.as_standard_layout().into_owned()
        })
    }

    /// The float data where it is (no copy), in whatever layout it has.
    pub fn float_view(&self, node: &str) -> Result<ArrayViewD<'_, F>> {
        match self {
            Value::Sequence { data, .. } => Ok(data.view().into_dyn()),
            Value::Vector(v) => Ok(v.view().into_dyn()),
            Value::Tokens { .. } => Err(Error::invalid(node, "expects float input, got token ids")),
        }
    }

    /// Shape of the gradient this value receives (`[0]` for tokens, which receive none).
    pub fn grad_shape(&self) -> Vec<usize> {
        match self {
            Value::Sequence { data, .. } => data.shape().to_vec(),
            Value::Vector(v) => v.shape().to_vec(),
            Value::Tokens { .. } => vec![0],
        }
    }
}
