//! Dropout: mask statistics, inverted scaling, determinism by seed, the
//! evaluation identity, backward through the same mask, and bad rates.

use ndarray::{Array2, Array3};
use odyssey_core::layers::Dropout;
use odyssey_core::Error;

#[test]
fn drops_the_configured_fraction_and_scales_survivors() {
    let mut dropout = Dropout::new(0.3, 42).unwrap();
    let x = Array2::<f32>::from_elem((400, 500), 2.0);
    let (y, _) = dropout.forward(x.view(), true);
    let dropped = y.iter().filter(|&&v| v == 0.0).count() as f64 / y.len() as f64;
    // 200 000 Bernoulli draws: the standard deviation of the fraction is ~0.001.
    assert!((dropped - 0.3).abs() < 0.005, "dropped fraction {dropped}");
    let scaled = (2.0 / 0.7) as f32;
    assert!(y.iter().all(|&v| v == 0.0 || (v - scaled).abs() < 1e-6));
    let mean = y.sum() as f64 / y.len() as f64;
    assert!(
        (mean - 2.0).abs() < 0.02,
        "inverted dropout keeps the mean, got {mean}"
    );
}

#[test]
fn masks_are_determined_by_the_seed() {
    let x = Array3::<f64>::ones((4, 5, 6));
    let masks = |seed: u64| {
        let mut dropout = Dropout::new(0.5, seed).unwrap();
        let (first, _) = dropout.forward(x.view(), true);
        let (second, _) = dropout.forward(x.view(), true);
        (first, second)
    };
    let (a1, a2) = masks(7);
    let (b1, b2) = masks(7);
    assert_eq!((&a1, &a2), (&b1, &b2), "same seed, same masks");
    assert_ne!(a1, a2, "successive calls draw new masks");
    assert_ne!(masks(8).0, a1, "another seed, another mask");
}

#[test]
fn evaluation_and_zero_rate_are_the_identity() {
    let x = Array2::from_shape_fn((3, 4), |(i, j)| (i * 4 + j) as f64);
    let dy = Array2::from_elem((3, 4), 0.5);
    for (rate, training) in [(0.5, false), (0.0, true)] {
        let mut dropout = Dropout::new(rate, 1).unwrap();
        let (y, cache) = dropout.forward(x.view(), training);
        assert_eq!(y, x);
        assert_eq!(dropout.backward(&cache, dy.view()).unwrap(), dy);
    }
}

#[test]
fn backward_reuses_the_forward_mask() {
    let mut dropout = Dropout::new(0.4, 3).unwrap();
    let x = Array2::<f64>::ones((20, 30));
    let (y, cache) = dropout.forward(x.view(), true);
    let dx = dropout
        .backward(&cache, Array2::ones((20, 30)).view())
        .unwrap();
    assert_eq!(dx, y, "with x = dy = 1 both are the mask");
    let err = dropout
        .backward(&cache, Array2::ones((30, 20)).view())
        .unwrap_err();
    assert!(
        matches!(&err, Error::Shape { name, .. } if name == "dy"),
        "{err}"
    );
}

#[test]
fn rate_one_zeroes_everything_without_nan() {
    let mut dropout = Dropout::new(1.0, 0).unwrap();
    let (y, cache) = dropout.forward(Array2::<f32>::ones((5, 5)).view(), true);
    assert!(y.iter().all(|&v| v == 0.0));
    let dx = dropout
        .backward(&cache, Array2::ones((5, 5)).view())
        .unwrap();
    assert!(dx.iter().all(|&v| v == 0.0));
}

#[test]
fn rates_outside_zero_one_are_rejected() {
    for rate in [-0.1, 1.1, f64::NAN] {
        let err = Dropout::new(rate, 0).unwrap_err();
        assert!(
            matches!(&err, Error::Invalid { name, .. } if name == "rate"),
            "{err}"
        );
    }
}
