//! A recurrent layer without a cell state (simple RNN, GRU) under test: the layer,
//! its inputs and random loss weights, all drawn from one seed, and the check of
//! every gradient `backward` returns against central finite differences in f64, and
//! the checks of the step norms, the recurrent clip and the initialisation that hold
//! for both alike.
//!
//! The loss is J = Σ w_y ⊙ y + Σ w_h ⊙ h_n, so ∂J/∂y = w_y and ∂J/∂h_n = w_h are
//! fed to `backward`.

use ndarray::{s, Array2, Array3, ArrayD, ArrayViewMutD};
use odyssey_core::layers::recurrent::{Recurrent, RecurrentGrads};
use odyssey_core::layers::{BackwardOptions, SequenceBatch};
use rand::distributions::Uniform;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::assert_close;

/// Central-difference step and the accepted error, `TOLERANCE · (1 + |numeric|)`.
pub const EPS: f64 = 1e-6;
pub const TOLERANCE: f64 = 1e-7;

#[derive(Debug, Clone)]
pub struct Case {
    pub batch: usize,
    pub time: usize,
    pub input: usize,
    pub hidden: usize,
    pub lengths: Option<Vec<usize>>,
    pub with_h0: bool,
}

impl Case {
    /// Three sequences of lengths 4, 1 and 3, three features, an initial state.
    pub fn new(hidden: usize) -> Self {
        Case {
            batch: 3,
            time: 4,
            input: 3,
            hidden,
            lengths: Some(vec![4, 1, 3]),
            with_h0: true,
        }
    }
}

/// A layer, its inputs and the loss weights.
pub struct Problem<L> {
    pub layer: L,
    pub x: Array3<f64>,
    pub h0: Option<Array2<f64>>,
    pub lengths: Option<Vec<usize>>,
    /// ∂J/∂y: `[batch, time, hidden]`
    pub w_y: Array3<f64>,
    /// ∂J/∂h_n: `[batch, hidden]`
    pub w_h: Array2<f64>,
}

impl<L: Recurrent<f64>> Problem<L> {
    /// `build(input_size, hidden_size, rng)` makes the layer, before anything else is drawn.
    pub fn new(
        case: &Case,
        seed: u64,
        build: impl FnOnce(usize, usize, &mut ChaCha8Rng) -> L,
    ) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let layer = build(case.input, case.hidden, &mut rng);
        let unit = Uniform::new(-1.0, 1.0);
        let (b, t, x, h) = (case.batch, case.time, case.input, case.hidden);
        Problem {
            layer,
            x: Array3::from_shape_simple_fn((b, t, x), || rng.sample(unit)),
            h0: case
                .with_h0
                .then(|| Array2::from_shape_simple_fn((b, h), || rng.sample(unit))),
            lengths: case.lengths.clone(),
            w_y: Array3::from_shape_simple_fn((b, t, h), || rng.sample(unit)),
            w_h: Array2::from_shape_simple_fn((b, h), || rng.sample(unit)),
        }
    }

    pub fn batch(&self) -> SequenceBatch<'_, f64> {
        SequenceBatch {
            x: self.x.view(),
            lengths: self.lengths.as_deref(),
            h0: self.h0.as_ref().map(|h| h.view()),
            c0: None,
        }
    }

    pub fn length(&self, b: usize) -> usize {
        self.lengths.as_ref().map_or(self.x.dim().1, |l| l[b])
    }

    pub fn loss(&self) -> f64 {
        let (out, _) = self.layer.forward_sequence(&self.batch()).unwrap();
        (&out.y * &self.w_y).sum() + (&out.h_n * &self.w_h).sum()
    }

    /// The gradients of `backward_sequence`, which must equal those of
    /// `backward_sequence_consuming` (the model's path) bit for bit, with δx or without it
    /// (a model input's: nobody reads it, so it must not be computed).
    pub fn gradients(&self, options: &BackwardOptions<f64>) -> RecurrentGrads<f64> {
        let (dy, dh_n) = (self.w_y.view(), Some(self.w_h.view()));
        let (_, cache) = self.layer.forward_sequence(&self.batch()).unwrap();
        let grads = self
            .layer
            .backward_sequence(&cache, dy, dh_n, None, options)
            .unwrap();
        for input_gradient in [true, false] {
            let (_, cache) = self.layer.forward_sequence(&self.batch()).unwrap();
            let consumed = self
                .layer
                .backward_sequence_consuming(cache, dy, dh_n, None, options, input_gradient)
                .unwrap();
            let (batch, time, _) = grads.dx.dim();
            let dx_ok = if input_gradient {
                consumed.dx == grads.dx
            } else {
                consumed.dx.dim() == (batch, time, 0)
            };
            assert!(
                dx_ok
                    && consumed.dh0 == grads.dh0
                    && consumed.params == grads.params
                    && consumed.step_grad_norms == grads.step_grad_norms,
                "backward_sequence_consuming (input_gradient {input_gradient}) differs from backward_sequence"
            );
        }
        grads
    }

    /// The gradient of the layer's tensor `name` in `grads`.
    pub fn param_grad<'g>(&self, grads: &'g RecurrentGrads<f64>, name: &str) -> &'g ArrayD<f64> {
        let names = self.layer.parameters().tensors();
        let index = names.iter().position(|(n, _)| *n == name);
        &grads.params[index.unwrap_or_else(|| panic!("no tensor {name}"))]
    }

    /// Central differences of `loss` with respect to every element of the tensor `select` picks.
    fn numeric_gradient(
        &mut self,
        select: impl Fn(&mut Self) -> ArrayViewMutD<'_, f64>,
    ) -> Vec<f64> {
        let count = select(self).len();
        (0..count)
            .map(|i| {
                let original = *select(self).iter().nth(i).unwrap();
                let mut at = |value: f64| {
                    *select(self).iter_mut().nth(i).unwrap() = value;
                    self.loss()
                };
                let derivative = (at(original + EPS) - at(original - EPS)) / (2.0 * EPS);
                *select(self).iter_mut().nth(i).unwrap() = original;
                derivative
            })
            .collect()
    }

    /// Every gradient of `backward` (∂J/∂x, ∂J/∂h0 when there is an h0, every
    /// tensor's) against finite differences.
    pub fn check_all_gradients(mut self) {
        let grads = self.gradients(&BackwardOptions::default());
        assert!(grads.dc0.is_none(), "a layer without a cell state");

        let numeric_dx = self.numeric_gradient(|p| p.x.view_mut().into_dyn());
        assert_close("dx", grads.dx.iter(), &numeric_dx, TOLERANCE);

        if self.h0.is_some() {
            let numeric_dh0 =
                self.numeric_gradient(|p| p.h0.as_mut().unwrap().view_mut().into_dyn());
            assert_close("dh0", grads.dh0.iter(), &numeric_dh0, TOLERANCE);
        }

        let names: Vec<String> = self
            .layer
            .parameters()
            .tensors()
            .iter()
            .map(|(n, _)| n.to_string())
            .collect();
        assert_eq!(grads.params.len(), names.len(), "one gradient per tensor");
        for (index, name) in names.iter().enumerate() {
            let numeric = self
                .numeric_gradient(|p| p.layer.parameters_mut().tensors_mut().swap_remove(index).1);
            assert_close(name, grads.params[index].iter(), &numeric, TOLERANCE);
        }
    }

    /// ‖∂J/∂h(k)‖ (`step_grad_norms`) at every step k against Δ(k) + ∂J'/∂h0 of the same
    /// layer run on steps k+1.. from h0 = h(k), where J' is the part of J on those steps.
    /// Needs full lengths.
    pub fn check_step_grad_norms(&self) {
        let none = BackwardOptions::default();
        let grads = self.gradients(&none);
        let (out, _) = self.layer.forward_sequence(&self.batch()).unwrap();
        let time = self.x.dim().1;
        for k in 0..time {
            let mut dj_dh = self.w_y.slice(s![.., k, ..]).to_owned();
            if k + 1 == time {
                dj_dh += &self.w_h;
            } else {
                let tail = SequenceBatch {
                    h0: Some(out.y.slice(s![.., k, ..])),
                    ..SequenceBatch::new(self.x.slice(s![.., k + 1.., ..]))
                };
                let (_, cache) = self.layer.forward_sequence(&tail).unwrap();
                let tail_dy = self.w_y.slice(s![.., k + 1.., ..]);
                let tail_grads = self
                    .layer
                    .backward_sequence(&cache, tail_dy, Some(self.w_h.view()), None, &none)
                    .unwrap();
                dj_dh += &tail_grads.dh0;
            }
            let expected = dj_dh.iter().map(|v| v * v).sum::<f64>().sqrt();
            assert!(
                (grads.step_grad_norms[k] - expected).abs() < 1e-12,
                "step {k}"
            );
        }
    }

    /// A recurrent clip far above every error changes nothing.
    pub fn check_loose_clip_changes_nothing(&self) {
        let plain = self.gradients(&BackwardOptions::default());
        let loose = self.gradients(&BackwardOptions {
            recurrent_clip: Some(1e6),
        });
        assert_eq!(plain.dx, loose.dx);
        assert_eq!(plain.params, loose.params);
    }

    /// With `clip` (which must bite), every step's error norm stays within
    /// clip·√(batch·hidden), and the gradients differ from the unclipped ones.
    pub fn check_clip_bounds_every_step(&self, clip: f64) {
        let grads = self.gradients(&BackwardOptions {
            recurrent_clip: Some(clip),
        });
        let (batch, _, hidden) = self.w_y.dim();
        let bound = clip * ((batch * hidden) as f64).sqrt();
        assert!(grads.step_grad_norms.iter().all(|&n| n <= bound + 1e-12));
        assert_ne!(
            grads.params,
            self.gradients(&BackwardOptions::default()).params
        );
    }
}

/// `build(seed)` twice with one seed gives equal layers, without a cell state, whose
/// tensors have PyTorch's names and `shapes` and values spread over PyTorch's
/// U(−1/√H, 1/√H) for H = 16 (±0.25).
pub fn check_pytorch_init<L: Recurrent<f32>>(
    build: impl Fn(&mut ChaCha8Rng) -> L,
    shapes: [(&str, Vec<usize>); 4],
) {
    let a = build(&mut ChaCha8Rng::seed_from_u64(9));
    let b = build(&mut ChaCha8Rng::seed_from_u64(9));
    assert_eq!(a.hidden_size(), 16);
    assert_eq!(a.parameters().tensors(), b.parameters().tensors());
    let tensors = a.parameters().tensors();
    let actual: Vec<(&str, Vec<usize>)> = tensors
        .iter()
        .map(|(n, t)| (*n, t.shape().to_vec()))
        .collect();
    assert_eq!(actual, shapes);
    let values: Vec<f32> = tensors
        .iter()
        .flat_map(|(_, t)| t.iter().copied())
        .collect();
    assert!(values.iter().all(|v| v.abs() <= 0.25));
    assert!(
        values.iter().any(|v| v.abs() > 0.2),
        "spread over the whole range"
    );
    assert!(!a.has_cell());
}
