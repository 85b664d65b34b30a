//! Embedding: row lookup, scatter-add backward (finite differences, repeated
//! ids), frozen tables, N(0, 1) initialisation and out-of-range ids.

use ndarray::{array, Array2};
use odyssey_core::layers::{Embedding, EmbeddingConfig, EmbeddingParams};
use odyssey_core::{Error, ParamSet};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn config(vocab_size: usize, dim: usize, frozen: bool) -> EmbeddingConfig {
    EmbeddingConfig {
        vocab_size,
        dim,
        frozen,
    }
}

fn table() -> EmbeddingParams<f64> {
    EmbeddingParams {
        weight: array![[0.0, 0.1], [1.0, 1.1], [2.0, 2.1], [3.0, 3.1]],
    }
}

#[test]
fn forward_looks_up_rows() {
    let embedding = Embedding::from_params(config(4, 2, false), table()).unwrap();
    let out = embedding.forward(&[2, 0, 2]).unwrap();
    assert_eq!(out, array![[2.0, 2.1], [0.0, 0.1], [2.0, 2.1]]);
}

#[test]
fn backward_scatter_adds_and_matches_finite_differences() {
    const H: f64 = 1e-6;
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let embedding = Embedding::<f64>::new(config(6, 3, false), &mut rng).unwrap();
    let indices = [4, 1, 4, 0, 4];
    let r = Array2::from_shape_fn((5, 3), |_| rng.gen_range(-1.0..1.0));
    let grad = embedding
        .backward(&indices, r.view())
        .unwrap()
        .expect("trainable");

    let expected_row4 = &r.row(0) + &r.row(2) + r.row(4);
    assert_eq!(grad.weight.row(4), expected_row4);
    assert!(
        grad.weight.row(5).iter().all(|&g| g == 0.0),
        "unused ids get no gradient"
    );

    let objective = |e: &Embedding<f64>| (e.forward(&indices).unwrap() * &r).sum();
    for (index, &analytic) in grad.weight.indexed_iter() {
        let mut plus = embedding.clone();
        plus.params.weight[index] += H;
        let mut minus = embedding.clone();
        minus.params.weight[index] -= H;
        let numeric = (objective(&plus) - objective(&minus)) / (2.0 * H);
        assert!(
            (analytic - numeric).abs() < 1e-8,
            "{index:?}: {analytic} vs {numeric}"
        );
    }
}

#[test]
fn frozen_table_gets_no_gradient() {
    let embedding = Embedding::from_params(config(4, 2, true), table()).unwrap();
    assert!(!embedding.trainable());
    assert_eq!(
        embedding
            .backward(&[1, 2], Array2::ones((2, 2)).view())
            .unwrap(),
        None
    );
    let err = embedding
        .backward(&[1, 2], Array2::ones((3, 2)).view())
        .unwrap_err();
    assert!(
        matches!(&err, Error::Shape { name, .. } if name == "dy"),
        "shapes are still checked: {err}"
    );
}

#[test]
fn out_of_range_ids_are_errors_naming_position_and_id() {
    let embedding = Embedding::from_params(config(4, 2, false), table()).unwrap();
    for result in [
        embedding.forward(&[0, 4]).map(|_| ()),
        embedding
            .backward(&[0, 4], Array2::ones((2, 2)).view())
            .map(|_| ()),
    ] {
        let err = result.unwrap_err();
        assert!(
            matches!(&err, Error::Invalid { name, reason } if name == "indices[1]" && reason.contains("token id 4")),
            "{err}"
        );
    }
}

#[test]
fn initialisation_is_standard_normal() {
    let embedding =
        Embedding::<f64>::new(config(200, 100, false), &mut ChaCha8Rng::seed_from_u64(9)).unwrap();
    let n = embedding.params.weight.len() as f64;
    let mean = embedding.params.weight.sum() / n;
    let variance = embedding.params.weight.mapv(|w| (w - mean).powi(2)).sum() / n;
    assert!(mean.abs() < 0.03, "mean {mean}");
    assert!((variance - 1.0).abs() < 0.04, "variance {variance}");
}

#[test]
fn table_is_named_weight_and_shape_checked() {
    let embedding = Embedding::from_params(config(4, 2, false), table()).unwrap();
    let names: Vec<_> = embedding
        .params
        .tensors()
        .into_iter()
        .map(|(n, t)| (n, t.shape().to_vec()))
        .collect();
    assert_eq!(names, [("weight", vec![4, 2])]);
    let err = Embedding::from_params(config(5, 2, false), table()).unwrap_err();
    assert!(
        matches!(&err, Error::Shape { name, .. } if name == "weight"),
        "{err}"
    );
}
