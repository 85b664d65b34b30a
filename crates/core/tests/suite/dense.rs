//! Dense layer: forward against hand-computed values, backward against
//! finite differences (f64) for every activation, PyTorch's initialisation,
//! parameter naming and shape errors.

use ndarray::{array, Array1, Array2};
use odyssey_core::layers::{Activation, Dense, DenseConfig, DenseParams};
use odyssey_core::{Error, ParamSet};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const ACTIVATIONS: [Activation; 4] = [
    Activation::Identity,
    Activation::Tanh,
    Activation::Relu,
    Activation::Sigmoid,
];

fn config(in_features: usize, out_features: usize, activation: Activation) -> DenseConfig {
    DenseConfig {
        in_features,
        out_features,
        activation,
    }
}

fn random(shape: (usize, usize), rng: &mut ChaCha8Rng) -> Array2<f64> {
    Array2::from_shape_fn(shape, |_| rng.gen_range(-1.5..1.5))
}

#[test]
fn forward_is_linear_then_activation() {
    let params = DenseParams {
        weight: array![[1.0, 2.0], [3.0, -4.0]],
        bias: array![0.5, -1.0],
    };
    let x = array![[1.0, 1.0], [0.0, 0.5]];
    let pre = array![[3.5, -2.0], [1.5, -3.0]];
    for activation in ACTIVATIONS {
        let dense = Dense::from_params(config(2, 2, activation), params.clone()).unwrap();
        let expected = pre.mapv(|a: f64| match activation {
            Activation::Identity => a,
            Activation::Tanh => a.tanh(),
            Activation::Relu => a.max(0.0),
            Activation::Sigmoid => 1.0 / (1.0 + (-a).exp()),
        });
        let y = dense.predict(x.view()).unwrap();
        assert!(
            (&y - &expected).iter().all(|d| d.abs() < 1e-15),
            "{activation:?}: {y}"
        );
    }
}

/// J = Σ y ⊙ R, so ∂J/∂y = R; every gradient is compared with central differences.
#[test]
fn backward_matches_finite_differences() {
    const H: f64 = 1e-6;
    let mut rng = ChaCha8Rng::seed_from_u64(11);
    for activation in ACTIVATIONS {
        let dense = Dense::<f64>::new(config(4, 3, activation), &mut rng).unwrap();
        let x = random((5, 4), &mut rng);
        let r = random((5, 3), &mut rng);
        let objective =
            |layer: &Dense<f64>, x: &Array2<f64>| (layer.predict(x.view()).unwrap() * &r).sum();

        let (_, cache) = dense.forward(x.view()).unwrap();
        let grads = dense.backward(&cache, r.view()).unwrap();
        let close = |analytic: f64, numeric: f64, what: &str| {
            assert!(
                (analytic - numeric).abs() < 1e-7 * (1.0 + numeric.abs()),
                "{activation:?} {what}: {analytic} vs {numeric}"
            );
        };

        for (index, &analytic) in grads.dx.indexed_iter() {
            let (mut plus, mut minus) = (x.clone(), x.clone());
            plus[index] += H;
            minus[index] -= H;
            close(
                analytic,
                (objective(&dense, &plus) - objective(&dense, &minus)) / (2.0 * H),
                &format!("dx{index:?}"),
            );
        }
        let mut layer = dense.clone();
        let analytic: Vec<(&str, Vec<f64>)> = grads
            .params
            .tensors()
            .into_iter()
            .map(|(n, t)| (n, t.iter().copied().collect()))
            .collect();
        for (tensor, (name, values)) in analytic.iter().enumerate() {
            for (i, &value) in values.iter().enumerate() {
                let nudge = |layer: &mut Dense<f64>, delta: f64| {
                    let mut tensors = layer.params.tensors_mut();
                    *tensors[tensor].1.iter_mut().nth(i).unwrap() += delta;
                };
                nudge(&mut layer, H);
                let plus = objective(&layer, &x);
                nudge(&mut layer, -2.0 * H);
                let minus = objective(&layer, &x);
                nudge(&mut layer, H);
                close(value, (plus - minus) / (2.0 * H), &format!("{name}[{i}]"));
            }
        }
    }
}

#[test]
fn initialisation_is_torch_uniform_within_one_over_sqrt_fan_in() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    let dense = Dense::<f32>::new(config(16, 256, Activation::Tanh), &mut rng).unwrap();
    let bound = 0.25;
    for values in [
        dense.params.weight.iter().copied().collect::<Vec<f32>>(),
        dense.params.bias.to_vec(),
    ] {
        assert!(values.iter().all(|v| v.abs() < bound));
        let max = values.iter().fold(0.0_f32, |m, v| m.max(v.abs()));
        assert!(
            max > 0.9 * bound,
            "spread over the whole range, got max {max}"
        );
    }
}

#[test]
fn parameters_are_named_and_shaped_like_nn_linear() {
    let dense = Dense::<f64>::new(
        config(3, 2, Activation::Identity),
        &mut ChaCha8Rng::seed_from_u64(0),
    )
    .unwrap();
    let tensors = dense.params.tensors();
    let listed: Vec<(&str, Vec<usize>)> = tensors
        .iter()
        .map(|(n, t)| (*n, t.shape().to_vec()))
        .collect();
    assert_eq!(listed, [("weight", vec![2, 3]), ("bias", vec![2])]);
}

#[test]
fn shape_errors_name_the_argument() {
    let dense = Dense::<f64>::new(
        config(3, 2, Activation::Relu),
        &mut ChaCha8Rng::seed_from_u64(0),
    )
    .unwrap();
    let err = dense.predict(Array2::zeros((4, 2)).view()).unwrap_err();
    assert!(
        matches!(&err, Error::Shape { name, actual, .. } if name == "x" && actual == &[4, 2]),
        "{err}"
    );

    let (_, cache) = dense.forward(Array2::zeros((4, 3)).view()).unwrap();
    let err = dense
        .backward(&cache, Array2::zeros((4, 3)).view())
        .unwrap_err();
    assert!(
        matches!(&err, Error::Shape { name, .. } if name == "dy"),
        "{err}"
    );

    let wrong_bias: DenseParams<f64> = DenseParams {
        weight: Array2::zeros((2, 3)),
        bias: Array1::zeros(3),
    };
    let err = Dense::from_params(config(3, 2, Activation::Relu), wrong_bias).unwrap_err();
    assert!(
        matches!(&err, Error::Shape { name, .. } if name == "bias"),
        "{err}"
    );

    let err = Dense::<f32>::new(
        config(0, 2, Activation::Relu),
        &mut ChaCha8Rng::seed_from_u64(0),
    )
    .unwrap_err();
    assert!(
        matches!(&err, Error::Invalid { name, .. } if name == "in_features"),
        "{err}"
    );
}
