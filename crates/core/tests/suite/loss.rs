//! Losses: known values, finite-difference gradients (f64), masking and
//! weighting, numerical stability with extreme logits, and the errors.

use ndarray::{array, Array2};
use odyssey_core::loss::{binary_cross_entropy_with_logits, mse, softmax_cross_entropy};
use odyssey_core::Error;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn random(rows: usize, cols: usize, scale: f64, seed: u64) -> Array2<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    Array2::from_shape_fn((rows, cols), |_| rng.gen_range(-scale..scale))
}

/// Compares `grad` with central differences of `loss` around `x`.
fn check_gradient(x: &Array2<f64>, grad: &Array2<f64>, loss: impl Fn(&Array2<f64>) -> f64) {
    const H: f64 = 1e-6;
    for (index, &analytic) in grad.indexed_iter() {
        let mut plus = x.clone();
        plus[index] += H;
        let mut minus = x.clone();
        minus[index] -= H;
        let numeric = (loss(&plus) - loss(&minus)) / (2.0 * H);
        assert!(
            (numeric - analytic).abs() <= 1e-7 * (1.0 + numeric.abs()),
            "at {index:?}: analytic {analytic}, numeric {numeric}"
        );
    }
}

/// Row 1 masked out: weight 0.
const MASK: [f64; 4] = [1.0, 0.0, 1.0, 1.0];
/// Uneven row weights, one of them 0.
const WEIGHTS: [f64; 4] = [0.5, 0.0, 2.0, 1.25];

#[test]
fn mse_value_and_gradient() {
    let (loss, grad) = mse(
        array![[1.0, 2.0], [3.0, 5.0]].view(),
        array![[0.0, 2.0], [3.0, 3.0]].view(),
        None,
    )
    .unwrap();
    assert_eq!(loss, (1.0 + 4.0) / 4.0);
    assert_eq!(grad, array![[0.5, 0.0], [0.0, 1.0]]);

    let prediction = random(4, 3, 2.0, 1);
    let target = random(4, 3, 2.0, 2);
    for mask in [None, Some(&MASK[..]), Some(&WEIGHTS[..])] {
        let (_, grad) = mse(prediction.view(), target.view(), mask).unwrap();
        check_gradient(&prediction, &grad, |p| {
            mse(p.view(), target.view(), mask).unwrap().0
        });
    }
}

#[test]
fn masked_rows_contribute_nothing_to_loss_gradient_or_count() {
    let prediction = random(4, 3, 2.0, 3);
    let target = random(4, 3, 2.0, 4);
    let (masked_loss, grad) = mse(prediction.view(), target.view(), Some(&MASK)).unwrap();
    assert!(grad.row(1).iter().all(|&g| g == 0.0));
    let kept = ndarray::stack![
        ndarray::Axis(0),
        prediction.row(0),
        prediction.row(2),
        prediction.row(3)
    ];
    let kept_target = ndarray::stack![
        ndarray::Axis(0),
        target.row(0),
        target.row(2),
        target.row(3)
    ];
    let (kept_loss, _) = mse(kept.view(), kept_target.view(), None).unwrap();
    assert!((masked_loss - kept_loss).abs() < 1e-15);

    let (loss, grad) = mse(prediction.view(), target.view(), Some(&[0.0; 4])).unwrap();
    assert_eq!(
        (loss, grad.sum()),
        (0.0, 0.0),
        "no valid row: zero loss, zero gradient"
    );
}

#[test]
fn cross_entropy_value_and_gradient() {
    let (loss, grad) =
        softmax_cross_entropy(array![[0.0, 0.0], [0.0, 0.0]].view(), &[0, 1], None, None).unwrap();
    assert!((loss - 2.0_f64.ln()).abs() < 1e-15);
    assert_eq!(grad, array![[-0.25, 0.25], [0.25, -0.25]]);

    let logits = random(4, 5, 3.0, 5);
    let targets = [4, 1000, 0, 2]; // row 1 is padding when masked: its target is never read
    let classes = [0.5, 1.0, 3.0, 0.0, 2.0];
    for (rows, class_weights) in [
        (&MASK, None),
        (&WEIGHTS, None),
        (&WEIGHTS, Some(&classes[..])),
    ] {
        let ce =
            |z: &Array2<f64>| softmax_cross_entropy(z.view(), &targets, Some(rows), class_weights);
        let (_, grad) = ce(&logits).unwrap();
        assert!(grad.row(1).iter().all(|&g| g == 0.0));
        check_gradient(&logits, &grad, |z| ce(z).unwrap().0);
    }

    let targets = [4, 3, 0, 2];
    let (_, grad) = softmax_cross_entropy(logits.view(), &targets, None, None).unwrap();
    check_gradient(&logits, &grad, |z| {
        softmax_cross_entropy(z.view(), &targets, None, None)
            .unwrap()
            .0
    });
}

#[test]
fn cross_entropy_is_stable_for_huge_logits() {
    let (loss, grad) = softmax_cross_entropy(
        array![[1000.0_f32, -1000.0, 0.0], [1000.0, 1000.0, 0.0]].view(),
        &[1, 0],
        None,
        None,
    )
    .unwrap();
    assert!(
        (loss - (2000.0 + 2.0_f64.ln()) / 2.0).abs() < 1e-3,
        "{loss}"
    );
    assert!(grad.iter().all(|g| g.is_finite()));
    assert!(
        (grad[[0, 1]] + 0.5).abs() < 1e-6 && (grad[[1, 0]] + 0.25).abs() < 1e-6,
        "{grad}"
    );
}

#[test]
fn cross_entropy_rejects_out_of_range_classes_and_bad_shapes() {
    let logits = Array2::<f64>::zeros((2, 3));
    let err = softmax_cross_entropy(logits.view(), &[0, 3], None, None).unwrap_err();
    assert!(
        matches!(&err, Error::Invalid { name, reason } if name == "targets[1]" && reason.contains('3')),
        "{err}"
    );
    let err = softmax_cross_entropy(logits.view(), &[0], None, None).unwrap_err();
    assert!(
        matches!(&err, Error::Shape { name, .. } if name == "targets"),
        "{err}"
    );
    let err = softmax_cross_entropy(logits.view(), &[0, 1], Some(&[1.0]), None).unwrap_err();
    assert!(
        matches!(&err, Error::Shape { name, .. } if name == "weights"),
        "{err}"
    );
    let err = softmax_cross_entropy(logits.view(), &[0, 1], None, Some(&[1.0, 2.0])).unwrap_err();
    assert!(
        matches!(&err, Error::Shape { name, .. } if name == "classWeights"),
        "{err}"
    );
    let err = softmax_cross_entropy(array![[0.0, f64::NAN]].view(), &[0], None, None).unwrap_err();
    assert!(matches!(err, Error::NonFinite { index: 1, .. }), "{err}");
}

#[test]
fn binary_cross_entropy_value_and_gradient() {
    let (loss, grad) = binary_cross_entropy_with_logits(
        array![[0.0, 0.0]].view(),
        array![[1.0, 0.0]].view(),
        None,
    )
    .unwrap();
    assert!((loss - 2.0_f64.ln()).abs() < 1e-15);
    assert_eq!(grad, array![[-0.25, 0.25]]);

    let logits = random(4, 3, 4.0, 6);
    let targets = random(4, 3, 0.5, 7).mapv(|t| t + 0.5);
    for mask in [None, Some(&MASK[..]), Some(&WEIGHTS[..])] {
        let (loss, grad) =
            binary_cross_entropy_with_logits(logits.view(), targets.view(), mask).unwrap();
        let naive = naive_bce(&logits, &targets, mask);
        assert!((loss - naive).abs() < 1e-12, "{loss} vs {naive}");
        check_gradient(&logits, &grad, |z| {
            binary_cross_entropy_with_logits(z.view(), targets.view(), mask)
                .unwrap()
                .0
        });
    }
}

/// −[t log σ(z) + (1 − t) log(1 − σ(z))], the weighted mean over the elements, straight from the definition.
fn naive_bce(z: &Array2<f64>, t: &Array2<f64>, weights: Option<&[f64]>) -> f64 {
    let mut total = 0.0;
    let mut count = 0.0;
    for ((r, c), &z) in z.indexed_iter() {
        let w = weights.map_or(1.0, |w| w[r]);
        let s = 1.0 / (1.0 + (-z).exp());
        total -= w * (t[[r, c]] * s.ln() + (1.0 - t[[r, c]]) * (1.0 - s).ln());
        count += w;
    }
    total / count
}

/// A weight of k counts a row as k copies of it: the weighted mean is the plain mean over the copies.
#[test]
fn integer_weights_repeat_rows() {
    let prediction = random(3, 2, 2.0, 8);
    let target = random(3, 2, 2.0, 9);
    let copies = [2_u32, 0, 3];
    let weights = copies.map(f64::from);
    let repeated_rows: Vec<usize> = (0..3).flat_map(|r| vec![r; copies[r] as usize]).collect();
    let repeat = |a: &Array2<f64>| a.select(ndarray::Axis(0), &repeated_rows);
    let (weighted, _) = mse(prediction.view(), target.view(), Some(&weights)).unwrap();
    let (plain, _) = mse(repeat(&prediction).view(), repeat(&target).view(), None).unwrap();
    assert!((weighted - plain).abs() < 1e-14, "{weighted} vs {plain}");

    let classes = [1, 0, 1];
    let picked: Vec<u32> = repeated_rows.iter().map(|&r| classes[r]).collect();
    let (weighted, _) =
        softmax_cross_entropy(prediction.view(), &classes, Some(&weights), None).unwrap();
    let (plain, _) =
        softmax_cross_entropy(repeat(&prediction).view(), &picked, None, None).unwrap();
    assert!((weighted - plain).abs() < 1e-14, "{weighted} vs {plain}");
}

#[test]
fn binary_cross_entropy_is_stable_and_checks_targets() {
    let (loss, grad) = binary_cross_entropy_with_logits(
        array![[100.0_f32, -100.0]].view(),
        array![[0.0, 0.0]].view(),
        None,
    )
    .unwrap();
    assert!((loss - 50.0).abs() < 1e-4, "{loss}");
    assert!(
        (grad[[0, 0]] - 0.5).abs() < 1e-6 && grad[[0, 1]].abs() < 1e-6,
        "{grad}"
    );
    let err = binary_cross_entropy_with_logits(
        array![[0.0, 0.0]].view(),
        array![[0.5, 1.5]].view(),
        None,
    )
    .unwrap_err();
    assert!(
        matches!(&err, Error::Invalid { name, .. } if name == "targets[1]"),
        "{err}"
    );
    let err =
        binary_cross_entropy_with_logits(array![[0.0, 0.0]].view(), array![[0.5]].view(), None)
            .unwrap_err();
    assert!(
        matches!(&err, Error::Shape { name, .. } if name == "targets"),
        "{err}"
    );
}
