//! Optimizers against update sequences computed by torch.optim
//! (fixtures/make_optim_fixtures.py → fixtures/optim_reference.json).

use ndarray::{ArrayD, ArrayViewD, ArrayViewMutD, IxDyn};
use odyssey_core::optim::{
    build, AdamConfig, Optimizer, OptimizerConfig, RmsPropConfig, SgdConfig,
};
use odyssey_core::{Error, Scalar};
use serde::Deserialize;

use crate::common;

#[derive(Deserialize)]
struct Reference {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    config: OptimizerConfig,
    shapes: Vec<Vec<usize>>,
    lrs: Vec<f64>,
    initial: Vec<Vec<f64>>,
    /// `[step][param][element]`
    grads: Vec<Vec<Vec<f64>>>,
    /// Parameters after each step: `[step][param][element]`
    expected: Vec<Vec<Vec<f64>>>,
}

fn reference() -> Reference {
    let text = include_str!("../fixtures/optim_reference.json");
    serde_json::from_str(text).expect("fixture parses")
}

fn tensors<F: Scalar>(shapes: &[Vec<usize>], flat: &[Vec<f64>]) -> Vec<ArrayD<F>> {
    shapes
        .iter()
        .zip(flat)
        .map(|(shape, values)| {
            let values = values.iter().map(|&v| F::from_f64_lossy(v)).collect();
            ArrayD::from_shape_vec(IxDyn(shape), values).unwrap()
        })
        .collect()
}

fn try_step<F: Scalar>(
    optimizer: &mut dyn Optimizer<F>,
    params: &mut [ArrayD<F>],
    grads: &[ArrayD<F>],
    lr: f64,
) -> odyssey_core::Result<()> {
    let mut param_views: Vec<ArrayViewMutD<'_, F>> =
        params.iter_mut().map(|p| p.view_mut()).collect();
    let grad_views: Vec<ArrayViewD<'_, F>> = grads.iter().map(|g| g.view()).collect();
    optimizer.step(&mut param_views, &grad_views, lr)
}

fn apply_step<F: Scalar>(
    optimizer: &mut dyn Optimizer<F>,
    params: &mut [ArrayD<F>],
    grads: &[ArrayD<F>],
    lr: f64,
) {
    try_step(optimizer, params, grads, lr).unwrap();
}

fn assert_close<F: Scalar>(
    case: &str,
    step: usize,
    actual: &[ArrayD<F>],
    expected: &[Vec<f64>],
    rel_tol: f64,
) {
    assert_eq!(
        actual.len(),
        expected.len(),
        "{case}: step {step}: parameter count"
    );
    for (p, (a, e)) in actual.iter().zip(expected).enumerate() {
        let what = format!("{case}: step {step}, param {p}");
        common::assert_close(&what, a.iter().map(|a| a.to_f64_lossy()), e, rel_tol);
    }
}

/// Runs steps `from..to` of a case, checking the parameters after each one.
fn run_steps<F: Scalar>(
    case: &Case,
    optimizer: &mut dyn Optimizer<F>,
    params: &mut [ArrayD<F>],
    steps: std::ops::Range<usize>,
    tol: f64,
) {
    for step in steps {
        let grads = tensors::<F>(&case.shapes, &case.grads[step]);
        apply_step(optimizer, params, &grads, case.lrs[step]);
        assert_close(&case.name, step, params, &case.expected[step], tol);
    }
}

fn check_against_torch<F: Scalar>(tol: f64) {
    let reference = reference();
    assert!(
        reference.cases.len() >= 12,
        "every optimizer variant has a case"
    );
    for case in &reference.cases {
        let mut optimizer = build::<F>(&case.config).unwrap();
        let mut params = tensors::<F>(&case.shapes, &case.initial);
        run_steps(
            case,
            optimizer.as_mut(),
            &mut params,
            0..case.lrs.len(),
            tol,
        );
    }
}

#[test]
fn f64_updates_match_torch() {
    check_against_torch::<f64>(1e-12);
}

#[test]
fn f32_updates_match_torch_to_single_precision() {
    check_against_torch::<f32>(2e-5);
}

/// Saving the state after 3 steps and loading it into a fresh optimizer
/// must continue exactly as the uninterrupted torch run.
#[test]
fn state_round_trip_resumes_the_run() {
    for case in &reference().cases {
        let mut first = build::<f64>(&case.config).unwrap();
        let mut params = tensors::<f64>(&case.shapes, &case.initial);
        run_steps(case, first.as_mut(), &mut params, 0..3, 1e-12);

        let state = first.state();
        assert_eq!(state.step, 3, "{}", case.name);
        let mut resumed = build::<f64>(&first.config()).unwrap();
        resumed.load_state(state).unwrap();
        run_steps(
            case,
            resumed.as_mut(),
            &mut params,
            3..case.lrs.len(),
            1e-12,
        );
    }
}

#[test]
fn state_names_follow_torch_buffers() {
    let names = |config: OptimizerConfig| -> Vec<String> {
        let mut optimizer = build::<f64>(&config).unwrap();
        let mut params = vec![ArrayD::<f64>::zeros(IxDyn(&[2]))];
        let grads = vec![ArrayD::<f64>::ones(IxDyn(&[2]))];
        apply_step(optimizer.as_mut(), &mut params, &grads, 0.1);
        optimizer
            .state()
            .tensors
            .into_iter()
            .map(|(name, _)| name)
            .collect()
    };
    assert!(names(OptimizerConfig::Sgd(SgdConfig::default())).is_empty());
    let momentum = SgdConfig {
        momentum: 0.9,
        ..SgdConfig::default()
    };
    assert_eq!(names(OptimizerConfig::Sgd(momentum)), ["0.momentum_buffer"]);
    assert_eq!(
        names(OptimizerConfig::Adam(AdamConfig::adamw())),
        ["0.exp_avg", "0.exp_avg_sq"]
    );
    let rms = RmsPropConfig {
        centered: true,
        momentum: 0.5,
        ..RmsPropConfig::default()
    };
    assert_eq!(
        names(OptimizerConfig::RmsProp(rms)),
        ["0.square_avg", "0.grad_avg", "0.momentum_buffer"]
    );
}

fn ones(shapes: &[&[usize]]) -> Vec<ArrayD<f64>> {
    shapes.iter().map(|s| ArrayD::ones(IxDyn(s))).collect()
}

#[test]
fn mismatched_shapes_are_rejected_without_touching_parameters() {
    let mut optimizer = build::<f64>(&OptimizerConfig::Adam(AdamConfig::default())).unwrap();
    let mut params = ones(&[&[2, 3], &[4]]);
    let before = params.clone();

    let err = try_step(
        optimizer.as_mut(),
        &mut params,
        &ones(&[&[2, 3], &[5]]),
        0.1,
    )
    .unwrap_err();
    assert!(
        matches!(&err, Error::Shape { name, actual, .. } if name == "grads[1]" && actual == &[5]),
        "{err}"
    );
    let err = try_step(optimizer.as_mut(), &mut params, &ones(&[&[2, 3]]), 0.1).unwrap_err();
    assert!(
        matches!(&err, Error::Shape { name, .. } if name == "grads"),
        "{err}"
    );
    assert_eq!(params, before);

    // The state is sized by the first successful step; a later parameter list must match it.
    apply_step(
        optimizer.as_mut(),
        &mut params,
        &ones(&[&[2, 3], &[4]]),
        0.1,
    );
    let mut other = ones(&[&[3, 2], &[4]]);
    let err = try_step(optimizer.as_mut(), &mut other, &ones(&[&[3, 2], &[4]]), 0.1).unwrap_err();
    assert!(
        matches!(&err, Error::Shape { name, .. } if name == "params[0]"),
        "{err}"
    );
}

#[test]
fn invalid_hyperparameters_and_learning_rates_are_rejected() {
    let bad_beta = AdamConfig {
        betas: (1.0, 0.999),
        ..AdamConfig::default()
    };
    assert!(
        matches!(build::<f32>(&OptimizerConfig::Adam(bad_beta)), Err(Error::Invalid { name, .. }) if name == "betas[0]")
    );
    let nesterov_without_momentum = SgdConfig {
        nesterov: true,
        ..SgdConfig::default()
    };
    assert!(build::<f32>(&OptimizerConfig::Sgd(nesterov_without_momentum)).is_err());
    let nan_eps = RmsPropConfig {
        eps: f64::NAN,
        ..RmsPropConfig::default()
    };
    assert!(build::<f32>(&OptimizerConfig::RmsProp(nan_eps)).is_err());

    let mut optimizer = build::<f32>(&OptimizerConfig::Sgd(SgdConfig::default())).unwrap();
    let mut param = ArrayD::<f32>::ones(IxDyn(&[1]));
    let grad = param.clone();
    for lr in [-0.1, f64::NAN, f64::INFINITY] {
        let err = optimizer
            .step(&mut [param.view_mut()], &[grad.view()], lr)
            .unwrap_err();
        assert!(
            matches!(&err, Error::Invalid { name, .. } if name == "lr"),
            "{err}"
        );
    }
}

#[test]
fn loading_incomplete_or_foreign_state_fails_with_the_tensor_name() {
    let config = OptimizerConfig::Adam(AdamConfig::default());
    let mut optimizer = build::<f64>(&config).unwrap();
    let buffer = || ArrayD::<f64>::zeros(IxDyn(&[2]));
    let mut state = odyssey_core::optim::OptimizerState {
        step: 1,
        tensors: vec![("0.exp_avg".to_string(), buffer())],
    };
    let err = optimizer.load_state(state.clone()).unwrap_err();
    assert!(
        matches!(&err, Error::Key { name, .. } if name == "0.exp_avg_sq"),
        "{err}"
    );

    state.tensors.push(("0.exp_avg_sq".to_string(), buffer()));
    state
        .tensors
        .push(("0.momentum_buffer".to_string(), buffer()));
    let err = optimizer.load_state(state).unwrap_err();
    assert!(
        matches!(&err, Error::Key { name, .. } if name == "0.momentum_buffer"),
        "{err}"
    );
}

#[test]
fn config_json_takes_torch_defaults() {
    let adamw: OptimizerConfig = serde_json::from_str(
        r#"{"type": "adam", "decoupledWeightDecay": true, "weightDecay": 0.01}"#,
    )
    .unwrap();
    assert_eq!(adamw, OptimizerConfig::Adam(AdamConfig::adamw()));
    let rms: OptimizerConfig = serde_json::from_str(r#"{"type": "rmsProp"}"#).unwrap();
    assert_eq!(rms, OptimizerConfig::RmsProp(RmsPropConfig::default()));
    let text = serde_json::to_string(&OptimizerConfig::Sgd(SgdConfig {
        momentum: 0.9,
        ..SgdConfig::default()
    }))
    .unwrap();
    assert_eq!(
        serde_json::from_str::<OptimizerConfig>(&text).unwrap(),
        OptimizerConfig::Sgd(SgdConfig {
            momentum: 0.9,
            ..SgdConfig::default()
        })
    );
}
