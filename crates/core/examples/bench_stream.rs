//! Streaming-step latency of `Stream::step_into` (the in-place path `model.step` takes) and of
//! `Stream::step` (the graph's path), B 1, for the sizes that decide when a step is split over
//! two threads, beside the step's roofline: the time one core takes to read the step's weights
//! (all of them, and half of them as each core of a split step does) right after reading them:
//! from its L2 where they fit it, else from L3. Run it twice to compare the split with one thread:
//!
//! ```text
//! cargo run --release -p odyssey-core --example bench_stream
//! RAYON_NUM_THREADS=1 cargo run --release -p odyssey-core --example bench_stream
//! ```
//!
//! `bench_stream X H [B]` times `step_into` alone for one size and batch (e.g. under
//! `perf stat`). Each figure is the fastest of 40 repetitions of 500 steps (µs per step), so
//! that a busy machine's preemptions fall out.

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
fn best(step: impl FnMut()) -> f64 {
    timed(step).0
}

/// Fastest repetition, µs per step: wall time, and the calling thread's CPU time (Linux).
fn timed(mut step: impl FnMut()) -> (f64, Option<f64>) {
    const STEPS: usize = 500;
    let (mut wall, mut cpu) = (f64::INFINITY, None::<f64>);
    for _ in 0..40 {
        let (start, cpu_start) = (Instant::now(), thread_cpu_ns());
        for _ in 0..STEPS {
            step();
        }
        wall = wall.min(start.elapsed().as_secs_f64() * 1e6 / STEPS as f64);
        if let (Some(from), Some(to)) = (cpu_start, thread_cpu_ns()) {
            let per_step = (to - from) as f64 / 1e3 / STEPS as f64;
            cpu = Some(cpu.map_or(per_step, |c| c.min(per_step)));
        }
    }
    (wall, cpu)
}

/// Nanoseconds the calling thread has run on a CPU (the scheduler's count), where Linux says.
fn thread_cpu_ns() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    stat.split_whitespace().next()?.parse().ok()
}

/// µs per in-place step of `batch` sequences, wall and CPU (see [`timed`]).
fn in_place(features: usize, hidden: usize, batch: usize) -> (f64, Option<f64>) {
    let model = lstm(features, hidden);
    let x: Vec<f32> = (0..batch * features)
        .map(|i| (i as f32 * 0.37).sin())
        .collect();
    let mut out = vec![0.0; batch * hidden];
    let mut stream = Stream::new();
    timed(|| {
        stream
            .step_into(&model, &x, batch, &mut out)
            .expect("a step")
    })
}

/// µs per step of one sequence through the graph's path.
fn graph(features: usize, hidden: usize) -> f64 {
    let model = lstm(features, hidden);
    let x: Vec<f32> = (0..features).map(|i| (i as f32 * 0.37).sin()).collect();
    let mut stream = Stream::new();
    let data = Array3::from_shape_vec((1, 1, features), x).expect("[1, 1, X]");
    let lengths: Arc<[usize]> = Arc::from(vec![1]);
    best(|| {
        let inputs = vec![Value::Sequence {
            data: data.clone(),
            lengths: lengths.clone(),
        }];
        stream.step(&model, inputs).expect("a step");
    })
}

/// µs one core takes to read `count` f32 that it read just before (so from its L2 when they
/// fit): vector loads into eight sums, fastest of 40 × 500 reads; `None` without AVX2.
fn read_time(count: usize) -> Option<f64> {
    #[cfg(target_arch = "x86_64")]
    if is_x86_feature_detected!("avx2") {
        let values: Vec<f32> = (0..count).map(|i| (i % 7) as f32).collect();
        let mut sink = 0.0;
        // SAFETY: AVX2 was detected.
        let time = best(|| sink += unsafe { sum_avx2(std::hint::black_box(&values)) });
        std::hint::black_box(sink);
        return Some(time);
    }
    let _ = count;
    None
}

/// The sum of `values` (whole 64-value blocks), eight vectors at a time.
///
/// # Safety
/// The CPU must support AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn sum_avx2(values: &[f32]) -> f32 {
    use std::arch::x86_64::*;
    let mut acc = [_mm256_setzero_ps(); 8];
    for block in values.chunks_exact(64) {
        for (v, acc) in acc.iter_mut().enumerate() {
            // SAFETY: lanes 8·v..8·v + 8 of a 64-value block.
            *acc = _mm256_add_ps(*acc, unsafe { _mm256_loadu_ps(block.as_ptr().add(8 * v)) });
        }
    }
    let mut lanes = [0.0f32; 8];
    let total = acc
        .iter()
        .fold(_mm256_setzero_ps(), |sum, &v| _mm256_add_ps(sum, v));
    // SAFETY: eight f32 of `lanes`.
    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), total) };
    lanes.iter().sum()
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("usage: bench_stream [X H [B]]"))
        .collect();
    if let [features, hidden, ref batch @ ..] = args[..] {
        let batch = batch.first().copied().unwrap_or(1);
        let (wall, cpu) = in_place(features, hidden, batch);
        let cpu = cpu.map_or("-".to_owned(), |c| format!("{c:.2}"));
        println!("X {features} H {hidden} B {batch}: step_into {wall:.2} µs per step (caller's CPU {cpu} µs)");
        return;
    }
    println!("threads {}; µs per step, B 1", rayon::current_num_threads());
    println!(
        "{:>5} {:>5} {:>12} {:>12} {:>10} {:>14} {:>14}",
        "X", "H", "step_into", "step", "KiB", "read all", "read half"
    );
    for (features, hidden) in [
        (16, 32),
        (32, 64),
        (48, 96),
        (64, 128),
        (96, 192),
        (128, 256),
        (256, 512),
    ] {
        let (step, path) = (in_place(features, hidden, 1).0, graph(features, hidden));
        let weights = 4 * hidden * (features + hidden);
        let show = |t: Option<f64>| t.map_or("-".to_owned(), |t| format!("{t:.2}"));
        let (all, half) = (show(read_time(weights)), show(read_time(weights / 2)));
        let kib = weights * 4 / 1024;
        println!(
            "{features:>5} {hidden:>5} {step:>12.2} {path:>12.2} {kib:>10} {all:>14} {half:>14}"
        );
    }
}
