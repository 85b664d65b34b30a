//! Fully connected layer: PyTorch's `nn.Linear` followed by an activation,
//! y = f(x Wᵀ + b), on a matrix of rows. A sequence `[batch, time, in]` is
//! reshaped to `[batch·time, in]` by the caller.

use ndarray::{Array1, Array2, ArrayView2, ArrayViewD, ArrayViewMutD, Axis, Zip};
use rand::Rng;

use crate::kernels::gemm;
use crate::{Error, ParamSet, Result, Scalar};

/// The elementwise function after the affine map ("none" is `Identity`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Activation {
    #[default]
    #[serde(rename = "none", alias = "identity")]
    Identity,
    Tanh,
    Relu,
    Sigmoid,
}

impl Activation {
    fn apply<F: Scalar>(self, a: F) -> F {
        match self {
            Activation::Identity => a,
            Activation::Tanh => a.tanh(),
            Activation::Relu => a.max(F::zero()),
            Activation::Sigmoid => F::one() / (F::one() + (-a).exp()),
        }
    }

    /// f'(a), written in terms of the output y = f(a) so that backward needs only y.
    fn derivative_from_output<F: Scalar>(self, y: F) -> F {
        match self {
            Activation::Identity => F::one(),
            Activation::Tanh => F::one() - y * y,
            // PyTorch's convention: the derivative at a = 0 is 0.
            Activation::Relu => {
                if y > F::zero() {
                    F::one()
                } else {
                    F::zero()
                }
            }
            Activation::Sigmoid => y * (F::one() - y),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DenseConfig {
    pub in_features: usize,
    pub out_features: usize,
    pub activation: Activation,
}

impl DenseConfig {
    pub fn validate(&self) -> Result<()> {
        for (name, size) in [
            ("in_features", self.in_features),
            ("out_features", self.out_features),
        ] {
            if size == 0 {
                return Err(Error::invalid(name, "must be >= 1, got 0"));
            }
        }
        Ok(())
    }
}

/// Parameters (and, with the same type, their gradients) with `nn.Linear`'s names and layout.
#[derive(Debug, Clone, PartialEq)]
pub struct DenseParams<F> {
    /// `weight`: `[out_features, in_features]`
    pub weight: Array2<F>,
    /// `bias`: `[out_features]`
    pub bias: Array1<F>,
}

impl<F: Scalar> DenseParams<F> {
    pub fn zeros(config: &DenseConfig) -> Self {
        DenseParams {
            weight: Array2::zeros((config.out_features, config.in_features)),
            bias: Array1::zeros(config.out_features),
        }
    }
}

impl<F: Scalar> ParamSet<F> for DenseParams<F> {
    fn tensors(&self) -> Vec<(&'static str, ArrayViewD<'_, F>)> {
        vec![
            ("weight", self.weight.view().into_dyn()),
            ("bias", self.bias.view().into_dyn()),
        ]
    }

    fn tensors_mut(&mut self) -> Vec<(&'static str, ArrayViewMutD<'_, F>)> {
        vec![
            ("weight", self.weight.view_mut().into_dyn()),
            ("bias", self.bias.view_mut().into_dyn()),
        ]
    }
}

/// What backward needs from forward: the input and the activated output.
#[derive(Debug, Clone)]
pub struct DenseCache<F> {
    /// `[rows, in_features]`
    x: Array2<F>,
    /// `[rows, out_features]`
    y: Array2<F>,
}

#[derive(Debug, Clone)]
pub struct DenseGrads<F> {
    /// ∂J/∂x: `[rows, in_features]`
    pub dx: Array2<F>,
    /// ∂J/∂weight, ∂J/∂bias
    pub params: DenseParams<F>,
}

#[derive(Debug, Clone)]
pub struct Dense<F> {
    pub config: DenseConfig,
    pub params: DenseParams<F>,
}

impl<F: Scalar> Dense<F> {
    /// PyTorch's `nn.Linear` initialisation: kaiming-uniform with a = √5 for
    /// the weight, which is U(−1/√in, 1/√in), and the same range for the bias.
    pub fn new<R: Rng>(config: DenseConfig, rng: &mut R) -> Result<Self> {
        config.validate()?;
        let bound = F::from_f64_lossy(1.0 / (config.in_features as f64).sqrt());
        let mut uniform = || rng.gen_range(-bound..bound);
        let weight =
            Array2::from_shape_fn((config.out_features, config.in_features), |_| uniform());
        let bias = Array1::from_shape_fn(config.out_features, |_| uniform());
        Ok(Dense {
            config,
            params: DenseParams { weight, bias },
        })
    }

    /// A layer with given parameters (e.g. from a checkpoint), shape-checked against `config`.
    pub fn from_params(config: DenseConfig, params: DenseParams<F>) -> Result<Self> {
        config.validate()?;
        let (out, inp) = (config.out_features, config.in_features);
        if params.weight.dim() != (out, inp) {
            return Err(Error::shape(
                "weight",
                format!("[{out}, {inp}]"),
                params.weight.shape(),
            ));
        }
        if params.bias.len() != out {
            return Err(Error::shape(
                "bias",
                format!("[{out}]"),
                params.bias.shape(),
            ));
        }
        Ok(Dense { config, params })
    }

    /// y = f(x Wᵀ + b) without keeping anything for backward.
    /// `x`: `[rows, in_features]` → `[rows, out_features]`
    pub fn predict(&self, x: ArrayView2<'_, F>) -> Result<Array2<F>> {
        if x.ncols() != self.config.in_features {
            let expected = format!("[rows, {}]", self.config.in_features);
            return Err(Error::shape("x", expected, x.shape()));
        }
        let mut y = Array2::zeros((x.nrows(), self.config.out_features));
        let bias = self.params.bias.as_standard_layout();
        let bias = bias.as_slice().expect("standard layout");
        gemm(x, self.params.weight.t(), y.view_mut(), false, Some(bias));
        let activation = self.config.activation;
        y.mapv_inplace(|a| activation.apply(a));
        Ok(y)
    }

    /// Like [`Dense::predict`], also returning the cache for [`Dense::backward`].
    pub fn forward(&self, x: ArrayView2<'_, F>) -> Result<(Array2<F>, DenseCache<F>)> {
        let y = self.predict(x)?;
        let cache = DenseCache {
            x: x.to_owned(),
            y: y.clone(),
        };
        Ok((y, cache))
    }

    /// `dy`: ∂J/∂y `[rows, out_features]`. With δ = dy ⊙ f'(a):
    /// ∂J/∂W = δᵀ x, ∂J/∂b = Σ_rows δ, ∂J/∂x = δ W.
    pub fn backward(&self, cache: &DenseCache<F>, dy: ArrayView2<'_, F>) -> Result<DenseGrads<F>> {
        if dy.dim() != cache.y.dim() {
            let expected = format!("{:?} (the forward output's shape)", cache.y.shape());
            return Err(Error::shape("dy", expected, dy.shape()));
        }
        let activation = self.config.activation;
        let mut delta = dy.to_owned();
        Zip::from(&mut delta)
            .and(&cache.y)
            .for_each(|d, &y| *d = *d * activation.derivative_from_output(y));
        let mut dx = Array2::zeros(cache.x.dim());
        gemm(
            delta.view(),
            self.params.weight.view(),
            dx.view_mut(),
            false,
            None,
        );
        let mut weight = Array2::zeros(self.params.weight.dim());
        gemm(delta.t(), cache.x.view(), weight.view_mut(), false, None);
        Ok(DenseGrads {
            dx,
            params: DenseParams {
                weight,
                bias: delta.sum_axis(Axis(0)),
            },
        })
    }
}
