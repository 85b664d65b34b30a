//! Learning-rate schedules: closed forms of PyTorch's StepLR, ExponentialLR,
//! CosineAnnealingLR stepped once per update, and the linear warmup in front.

use odyssey_core::optim::{LrSchedule, Schedule};
use odyssey_core::Error;

fn rates(schedule: LrSchedule, steps: u64) -> Vec<f64> {
    (0..steps).map(|s| schedule.learning_rate(0.1, s)).collect()
}

fn assert_rates(actual: &[f64], expected: &[f64]) {
    assert_eq!(actual.len(), expected.len());
    for (s, (a, e)) in actual.iter().zip(expected).enumerate() {
        assert!((a - e).abs() < 1e-15, "step {s}: got {a}, expected {e}");
    }
}

fn no_warmup(schedule: Schedule) -> LrSchedule {
    LrSchedule {
        schedule,
        warmup_steps: 0,
    }
}

#[test]
fn constant_keeps_the_base_rate() {
    assert_rates(&rates(LrSchedule::default(), 3), &[0.1, 0.1, 0.1]);
}

#[test]
fn step_decays_every_step_size_updates() {
    let schedule = no_warmup(Schedule::Step {
        step_size: 2,
        gamma: 0.5,
    });
    assert_rates(&rates(schedule, 5), &[0.1, 0.1, 0.05, 0.05, 0.025]);
}

#[test]
fn exponential_decays_every_update() {
    let schedule = no_warmup(Schedule::Exponential { gamma: 0.9 });
    assert_rates(&rates(schedule, 3), &[0.1, 0.09, 0.1 * 0.81]);
}

#[test]
fn cosine_anneals_to_eta_min_and_stays_there() {
    let schedule = no_warmup(Schedule::Cosine {
        t_max: 4,
        eta_min: 0.02,
    });
    let half = 0.02 + 0.08 * (1.0 + std::f64::consts::FRAC_1_SQRT_2) / 2.0;
    let three_quarters = 0.02 + 0.08 * (1.0 - std::f64::consts::FRAC_1_SQRT_2) / 2.0;
    assert_rates(
        &rates(schedule, 7),
        &[0.1, half, 0.06, three_quarters, 0.02, 0.02, 0.02],
    );
}

#[test]
fn warmup_ramps_linearly_then_hands_over_at_decay_step_zero() {
    let schedule = LrSchedule {
        schedule: Schedule::Step {
            step_size: 2,
            gamma: 0.5,
        },
        warmup_steps: 3,
    };
    assert_rates(
        &rates(schedule, 7),
        &[0.025, 0.05, 0.075, 0.1, 0.1, 0.05, 0.05],
    );
}

#[test]
fn degenerate_schedules_are_rejected() {
    let bad = [
        (
            Schedule::Step {
                step_size: 0,
                gamma: 0.5,
            },
            "stepSize",
        ),
        (
            Schedule::Step {
                step_size: 1,
                gamma: -0.5,
            },
            "gamma",
        ),
        (Schedule::Exponential { gamma: f64::NAN }, "gamma"),
        (
            Schedule::Cosine {
                t_max: 0,
                eta_min: 0.0,
            },
            "tMax",
        ),
        (
            Schedule::Cosine {
                t_max: 5,
                eta_min: -1.0,
            },
            "etaMin",
        ),
    ];
    for (schedule, field) in bad {
        let err = no_warmup(schedule).validate().unwrap_err();
        assert!(
            matches!(&err, Error::Invalid { name, .. } if name == field),
            "{err}"
        );
    }
}

#[test]
fn json_form_is_camel_case_with_a_type_tag() {
    let schedule: LrSchedule = serde_json::from_str(
        r#"{"schedule": {"type": "cosine", "tMax": 100, "etaMin": 0.001}, "warmupSteps": 10}"#,
    )
    .unwrap();
    assert_eq!(
        schedule,
        LrSchedule {
            schedule: Schedule::Cosine {
                t_max: 100,
                eta_min: 0.001
            },
            warmup_steps: 10
        }
    );
}
