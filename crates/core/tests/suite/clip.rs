//! Gradient clipping: global (PyTorch `clip_grad_norm_`), per tensor (Keras
//! `clipnorm`), by value (Keras `clipvalue`), their order, and the reported norm.

use ndarray::{arr1, s, Array, ArrayD};
use odyssey_core::optim::{clip_gradients, l2_norm, ClipConfig, ClipReport};
use odyssey_core::{Error, Scalar};

fn grads<F: Scalar>(tensors: &[&[f64]]) -> Vec<ArrayD<F>> {
    tensors
        .iter()
        .map(|t| arr1(&t.iter().map(|&v| F::from_f64_lossy(v)).collect::<Vec<_>>()).into_dyn())
        .collect()
}

fn clip<F: Scalar>(tensors: &mut [ArrayD<F>], cfg: ClipConfig) -> ClipReport {
    let mut views: Vec<_> = tensors.iter_mut().map(|t| t.view_mut()).collect();
    clip_gradients(&mut views, &cfg).unwrap()
}

fn assert_values(tensors: &[ArrayD<f64>], expected: &[&[f64]]) {
    for (t, e) in tensors.iter().zip(expected) {
        for (&a, &e) in t.iter().zip(e.iter()) {
            assert!((a - e).abs() < 1e-12, "got {t}, expected {expected:?}");
        }
    }
}

/// [3, 4] and [12]: norms 5 and 12, global norm 13.
fn three_four_twelve() -> Vec<ArrayD<f64>> {
    grads(&[&[3.0, 4.0], &[12.0]])
}

#[test]
fn global_norm_scales_everything_like_torch() {
    let mut g = three_four_twelve();
    let report = clip(
        &mut g,
        ClipConfig {
            global_norm: Some(6.5),
            ..ClipConfig::default()
        },
    );
    assert_eq!(
        report,
        ClipReport {
            pre_clip_norm: 13.0,
            clipped: true
        }
    );
    let factor = 6.5 / (13.0 + 1e-6);
    assert_values(&g, &[&[3.0 * factor, 4.0 * factor], &[12.0 * factor]]);
}

#[test]
fn global_norm_below_threshold_leaves_gradients_alone() {
    let mut g = three_four_twelve();
    let report = clip(
        &mut g,
        ClipConfig {
            global_norm: Some(13.0),
            ..ClipConfig::default()
        },
    );
    assert_eq!(
        report,
        ClipReport {
            pre_clip_norm: 13.0,
            clipped: false
        }
    );
    assert_eq!(g, three_four_twelve());
}

#[test]
fn per_tensor_norm_clips_only_the_tensors_above_it() {
    let mut g = three_four_twelve();
    let report = clip(
        &mut g,
        ClipConfig {
            per_tensor_norm: Some(5.0),
            ..ClipConfig::default()
        },
    );
    assert_eq!(
        report,
        ClipReport {
            pre_clip_norm: 13.0,
            clipped: true
        }
    );
    assert_values(&g, &[&[3.0, 4.0], &[5.0]]);
}

#[test]
fn value_clamps_each_element_keeping_its_sign() {
    let mut g = grads::<f64>(&[&[3.0, -4.0], &[-12.0, 0.5]]);
    let report = clip(
        &mut g,
        ClipConfig {
            value: Some(3.5),
            ..ClipConfig::default()
        },
    );
    assert!(report.clipped);
    assert_values(&g, &[&[3.0, -3.5], &[-3.5, 0.5]]);
}

#[test]
fn combined_clipping_runs_value_then_per_tensor_then_global() {
    let mut g = grads::<f64>(&[&[100.0, 1.0], &[1.0]]);
    let cfg = ClipConfig {
        value: Some(10.0),
        per_tensor_norm: Some(4.0),
        global_norm: Some(3.0),
    };
    let report = clip(&mut g, cfg);
    assert!(
        (report.pre_clip_norm - 10002.0_f64.sqrt()).abs() < 1e-12,
        "norm before any clipping"
    );
    // value: [10, 1], [1]; per tensor: [10, 1]·4/√101, [1]; global: norm √17 > 3.
    let per_tensor = 4.0 / 101.0_f64.sqrt();
    let global = 3.0 / (17.0_f64.sqrt() + 1e-6);
    assert_values(
        &g,
        &[
            &[10.0 * per_tensor * global, per_tensor * global],
            &[global],
        ],
    );
}

#[test]
fn non_finite_gradients_are_reported_and_left_untouched() {
    for bad in [f64::NAN, f64::INFINITY] {
        let mut g = grads::<f64>(&[&[1.0, bad], &[2.0]]);
        let cfg = ClipConfig {
            global_norm: Some(1.0),
            per_tensor_norm: Some(1.0),
            value: Some(0.5),
        };
        let report = clip(&mut g, cfg);
        assert!(!report.is_finite() && !report.clipped, "{report:?}");
        assert_eq!(report.pre_clip_norm.is_nan(), bad.is_nan());
        assert_eq!(g[1][0], 2.0);
        assert_eq!(g[0][0], 1.0);
    }
}

#[test]
fn huge_finite_gradients_clip_without_nan() {
    // Squares of 1e200 overflow f64: the norm must still come out finite.
    let mut g = grads::<f64>(&[&[1e200, -1e200], &[1e200]]);
    let report = clip(
        &mut g,
        ClipConfig {
            global_norm: Some(1.0),
            ..ClipConfig::default()
        },
    );
    assert!((report.pre_clip_norm / (3.0_f64.sqrt() * 1e200) - 1.0).abs() < 1e-12);
    let expected = 1.0 / 3.0_f64.sqrt();
    assert_values(&g, &[&[expected, -expected], &[expected]]);

    // f32's largest values: the scale factor (~1e-39) is below f32's normal range.
    let mut g = grads::<f32>(&[&[3e38, -3e38]]);
    let report = clip(
        &mut g,
        ClipConfig {
            global_norm: Some(1.0),
            ..ClipConfig::default()
        },
    );
    assert!(report.is_finite() && report.clipped);
    for &v in g[0].iter() {
        assert!(
            (v.abs() - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6,
            "{v}"
        );
    }
}

#[test]
fn thresholds_must_be_positive_and_finite() {
    for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        let mut g = three_four_twelve();
        let mut views: Vec<_> = g.iter_mut().map(|t| t.view_mut()).collect();
        let cfg = ClipConfig {
            per_tensor_norm: Some(bad),
            ..ClipConfig::default()
        };
        let err = clip_gradients(&mut views, &cfg).unwrap_err();
        assert!(
            matches!(&err, Error::Invalid { name, .. } if name == "perTensorNorm"),
            "{err}"
        );
    }
}

#[test]
fn l2_norm_is_exact_for_any_length_and_layout() {
    // Σ k² for k < n is exact in f64 at these sizes, so any summation order must hit it.
    for n in [1_usize, 7, 8, 9, 1003] {
        let values = Array::from_iter((0..n).map(|k| k as f32));
        let expected = ((n * (n - 1) * (2 * n - 1)) as f64 / 6.0).sqrt();
        assert_eq!(l2_norm(&values), expected, "contiguous, n = {n}");
        let strided = Array::from_iter((0..2 * n).map(|k| (k / 2) as f32 * ((k % 2) as f32)));
        assert_eq!(
            l2_norm(&strided.slice(s![1..;2])),
            expected,
            "strided, n = {n}"
        );
    }
    assert_eq!(l2_norm(&Array::<f32, _>::zeros(0)), 0.0);
    let transposed = Array::from_shape_fn((3, 5), |(i, j)| (i * 5 + j) as f64).reversed_axes();
    assert_eq!(l2_norm(&transposed), (1015.0_f64).sqrt());
    assert!(l2_norm(&Array::from_vec(vec![1.0_f32, f32::NAN, 2.0])).is_nan());
}
