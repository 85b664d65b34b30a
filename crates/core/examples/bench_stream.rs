//! Streaming-step latency of `Stream::step_into` (the in-place path `model.step` takes) and of
//! `Stream::step` (the graph's path), B 1, for the sizes that decide when a step is split over
//! two threads. Run it twice to compare the split with one thread:
//!
//! ```text
//! cargo run --release -p odyssey-core --example bench_stream
//! RAYON_NUM_THREADS=1 cargo run --release -p odyssey-core --example bench_stream
//! ```
//!
//! Each figure is the fastest of 40 repetitions of 500 steps (µs per step), so that a
//! busy machine's preemptions fall out.

use std::sync::Arc;
use std::time::Instant;

use ndarray::Array3;
use odyssey_core::model::{Model, ModelSpec, Stream, Value};

fn lstm(features: usize, hidden: usize) -> Model<f32> {
    let spec: ModelSpec = serde_json::from_value(serde_json::json!({
        "inputs": [{"kind": "sequence", "name": "x", "features": features}],
        "nodes": [{"name": "lstm", "inputs": ["x"], "type": "lstm", "hiddenSize": hidden}],
        "output": "lstm", "loss": "mse"
    }))
    .expect("a valid spec");
    Model::new(spec).expect("the model builds")
}

/// Fastest repetition, µs per step.
fn best(mut step: impl FnMut()) -> f64 {
    const STEPS: usize = 500;
    (0..40)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..STEPS {
                step();
            }
            start.elapsed().as_secs_f64() * 1e6 / STEPS as f64
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    println!("threads {}; µs per step, B 1", rayon::current_num_threads());
    println!("{:>5} {:>5} {:>12} {:>12}", "X", "H", "step_into", "step");
    for (features, hidden) in [
        (16, 32),
        (32, 64),
        (48, 96),
        (64, 128),
        (128, 256),
        (256, 512),
    ] {
        let model = lstm(features, hidden);
        let x: Vec<f32> = (0..features).map(|i| (i as f32 * 0.37).sin()).collect();
        let mut out = vec![0.0; hidden];
        let mut stream = Stream::new();
        let in_place = best(|| stream.step_into(&model, &x, 1, &mut out).expect("a step"));
        let mut stream = Stream::new();
        let data = Array3::from_shape_vec((1, 1, features), x.clone()).expect("[1, 1, X]");
        let lengths: Arc<[usize]> = Arc::from(vec![1]);
        let graph = best(|| {
            let inputs = vec![Value::Sequence {
                data: data.clone(),
                lengths: lengths.clone(),
            }];
            stream.step(&model, inputs).expect("a step");
        });
        println!("{features:>5} {hidden:>5} {in_place:>12.2} {graph:>12.2}");
    }
}
